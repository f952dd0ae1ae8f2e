/**
 * Relays for transport tests: a TCP relay that forwards bytes both ways and
 * keeps a copy (what a passive observer on the wire sees), and a man in the
 * middle that terminates TLS with its own certificate and opens a second TLS
 * connection to the real server.
 *
 * @module
 */
import { connect as nodeConnect, type TLSSocket } from "node:tls";
import { Buffer } from "node:buffer";
import { concat } from "@std/bytes/concat";
import type { TlsIdentity } from "../../server/tls_identity.ts";

/** A TCP relay on 127.0.0.1 that records what passes. */
export interface Relay extends AsyncDisposable {
  port: number;
  /** Every byte seen, both directions, in arrival order per direction. */
  captured(): { toServer: Uint8Array; toClient: Uint8Array };
  /** Sends later connections to another port (e.g. a server with another certificate). */
  retarget(port: number): void;
}

async function _pump(
  from: Deno.Conn,
  to: Deno.Conn,
  record: Uint8Array[],
): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    while (true) {
      const n = await from.read(buf);
      if (n === null) break;
      const chunk = buf.slice(0, n);
      record.push(chunk);
      for (let off = 0; off < n;) off += await to.write(chunk.subarray(off));
    }
  } catch {
    // either side went away; closing both below ends the other pump
  }
  for (const c of [from, to]) {
    try {
      c.close();
    } catch {
      // already closed
    }
  }
}

/** Starts a relay to `targetPort` on 127.0.0.1. */
export function startRelay(targetPort: number): Relay {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let target = targetPort;
  const toServer: Uint8Array[] = [];
  const toClient: Uint8Array[] = [];
  const tasks = new Set<Promise<void>>();
  const loop = (async () => {
    for await (const client of listener) {
      const task = (async () => {
        let server: Deno.Conn;
        try {
          server = await Deno.connect({ hostname: "127.0.0.1", port: target });
        } catch {
          client.close();
          return;
        }
        await Promise.all([_pump(client, server, toServer), _pump(server, client, toClient)]);
      })();
      tasks.add(task);
      // floating-ok: the task catches everything itself; this only forgets it when done
      task.finally(() => tasks.delete(task));
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    captured: () => ({ toServer: concat(toServer), toClient: concat(toClient) }),
    retarget: (port) => (target = port),
    async [Symbol.asyncDispose]() {
      listener.close();
      await loop.catch(() => {});
      await Promise.allSettled([...tasks]);
    },
  };
}

/**
 * A man in the middle: accepts TLS with `identity` (its own certificate)
 * and relays the decrypted bytes over a new TLS connection to the real
 * server on `targetPort`, whose certificate it accepts blindly.
 */
export function startTlsMitm(targetPort: number, identity: TlsIdentity): Relay {
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: identity.certPem,
    key: identity.keyPem,
  });
  const toServer: Uint8Array[] = [];
  const toClient: Uint8Array[] = [];
  const tasks = new Set<Promise<void>>();
  const sockets = new Set<TLSSocket>();
  const loop = (async () => {
    for await (const client of listener) {
      const task = (async () => {
        const upstream = await new Promise<TLSSocket | undefined>((resolve) => {
          const s = nodeConnect({ host: "127.0.0.1", port: targetPort, rejectUnauthorized: false });
          s.once("secureConnect", () => resolve(s));
          s.once("error", () => resolve(undefined));
        });
        if (!upstream) {
          client.close();
          return;
        }
        sockets.add(upstream);
        const ended = new Promise<void>((resolve) => {
          upstream.on("data", (b: Uint8Array) => {
            const chunk = new Uint8Array(b);
            toClient.push(chunk);
            client.write(chunk).catch(() => upstream.destroy());
          });
          upstream.on("close", () => {
            try {
              client.close();
            } catch {
              // already closed
            }
            resolve();
          });
          upstream.on("error", () => {});
        });
        const buf = new Uint8Array(64 * 1024);
        try {
          while (true) {
            const n = await client.read(buf);
            if (n === null) break;
            const chunk = buf.slice(0, n);
            toServer.push(chunk);
            upstream.write(chunk);
          }
        } catch {
          // the client went away
        }
        upstream.destroy();
        await ended;
        sockets.delete(upstream);
      })();
      tasks.add(task);
      // floating-ok: the task catches everything itself; this only forgets it when done
      task.finally(() => tasks.delete(task));
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    captured: () => ({ toServer: concat(toServer), toClient: concat(toClient) }),
    retarget: () => {
      throw new Error("a man in the middle has one target");
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      await loop.catch(() => {});
      for (const s of sockets) s.destroy();
      await Promise.allSettled([...tasks]);
    },
  };
}

/** Whether `needle` occurs anywhere in `hay`. */
export function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(hay.buffer, hay.byteOffset, hay.byteLength).indexOf(Buffer.from(needle)) >= 0;
}
