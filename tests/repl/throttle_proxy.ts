/**
 * A TCP proxy on 127.0.0.1 for REPL tests: forwards each connection to a
 * server, each direction at most `rate` bytes per second (so a transfer
 * lasts long enough to be watched), and can go down and come back on the
 * same port (a server that is away).
 *
 * @module
 */

/** A running proxy. */
export interface ThrottleProxy extends AsyncDisposable {
  /** The port clients connect to. */
  port: number;
  /** Bytes per second per connection and direction; Infinity: no limit. Changeable. */
  rate: number;
  /** Closes the listener and every connection (the server seems gone). */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): void;
}

/** Starts a proxy to `127.0.0.1:target`. */
export function startThrottleProxy(target: number, rate: number): ThrottleProxy {
  const conns = new Set<Deno.Conn>();
  const pumps = new Set<Promise<void>>();
  let listener: Deno.Listener | undefined;
  let accepting: Promise<void> = Promise.resolve();

  const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
    const buf = new Uint8Array(16 * 1024);
    try {
      for (let n = await from.read(buf); n !== null; n = await from.read(buf)) {
        let off = 0;
        while (off < n) off += await to.write(buf.subarray(off, n));
        if (Number.isFinite(proxy.rate)) {
          await new Promise((r) => setTimeout(r, (n * 1000) / proxy.rate));
        }
      }
    } catch {
      // either side went away
    }
    for (const c of [from, to]) {
      try {
        c.close();
      } catch {
        // already closed
      }
      conns.delete(c);
    }
  };

  const serve = async (l: Deno.Listener) => {
    try {
      for await (const client of l) {
        let server: Deno.Conn;
        try {
          server = await Deno.connect({ hostname: "127.0.0.1", port: target });
        } catch {
          client.close();
          continue;
        }
        conns.add(client);
        conns.add(server);
        const p = Promise.all([pipe(client, server), pipe(server, client)]).then(() => {});
        pumps.add(p);
        p.finally(() => pumps.delete(p)).catch(() => {});
      }
    } catch {
      // the listener closed
    }
  };

  const proxy: ThrottleProxy = {
    port: 0,
    rate,
    async down() {
      listener?.close();
      listener = undefined;
      await accepting;
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // already closed
        }
      }
      conns.clear();
      await Promise.all([...pumps]);
    },
    up() {
      listener = Deno.listen({ hostname: "127.0.0.1", port: proxy.port });
      proxy.port = (listener.addr as Deno.NetAddr).port;
      accepting = serve(listener);
    },
    async [Symbol.asyncDispose]() {
      await proxy.down();
    },
  };
  proxy.up();
  return proxy;
}
