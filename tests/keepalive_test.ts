/**
 * Keepalive (PROTOCOL.md §5.3): a peer that answers every `ping` is alive,
 * even when it sends nothing else; a peer that answers nothing is closed with
 * `timeout`. Both run against a real `parley serve` process and a raw client
 * that does exactly what the case says and no more.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import type { DecodedFrame } from "../protocol/frame_codec.ts";
import { type SpawnedServer, spawnServer } from "./helpers.ts";
import { rawLogin, type RawSession } from "./hostile/raw.ts";

const IDLE_MS = 1000;

async function serverWithIdle(idleTimeoutMs: number): Promise<SpawnedServer> {
  const dataDir = await Deno.makeTempDir({ prefix: "parley-keepalive-" });
  await Deno.writeTextFile(
    join(dataDir, "config.json"),
    JSON.stringify({ limits: { idleTimeoutMs } }),
  );
  // Plaintext: the raw client reads and answers frames on the socket itself.
  const server = await spawnServer({ dataDir, args: ["--plain"] });
  return {
    ...server,
    async [Symbol.asyncDispose]() {
      await server.stop();
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}

/** What a raw client saw while it held its connection. */
interface Held {
  pings: number;
  error: string | undefined;
  closedByServer: boolean;
  /** The reply to a request sent after the hold, if the connection was still open. */
  echo: unknown;
}

/**
 * Holds a logged-in raw connection for `holdMs`, answering each `ping` at
 * once with a `pong` when `answer` is true and sending nothing else. Then, if
 * the connection is still open, sends one `diag.echo` and waits for its reply.
 */
async function hold(raw: RawSession, holdMs: number, answer: boolean): Promise<Held> {
  const held: Held = { pings: 0, error: undefined, closedByServer: false, echo: undefined };
  let echoed!: (data: unknown) => void;
  const echo = new Promise<unknown>((r) => (echoed = r));
  let stopping = false;
  const loop = (async () => {
    while (true) {
      let frame: DecodedFrame | null;
      try {
        frame = await raw.link.reader.next();
      } catch (e) {
        if (stopping) return;
        throw e;
      }
      if (frame === null) {
        held.closedByServer = !stopping;
        echoed(undefined);
        return;
      }
      const h = frame.header;
      if (h.t === "ping") {
        held.pings++;
        if (answer) await raw.sendFrame({ t: "pong", id: h.id as number });
      } else if (h.t === "error") {
        held.error = h.code as string;
      } else if (h.t === "res" && h.id === 1) {
        echoed(h.data);
      }
    }
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([loop, new Promise((r) => (timer = setTimeout(r, holdMs)))]);
  clearTimeout(timer);
  if (!held.closedByServer) {
    await raw.sendFrame({ t: "req", id: 1, op: "diag.echo", args: { still: "here" } });
    let echoTimer: ReturnType<typeof setTimeout> | undefined;
    held.echo = await Promise.race([
      echo,
      new Promise((r) => (echoTimer = setTimeout(() => r(undefined), 5000))),
    ]);
    clearTimeout(echoTimer);
  }
  stopping = true;
  try {
    raw.conn.close();
  } catch (e) {
    if (!(e instanceof Deno.errors.BadResource)) throw e;
  }
  await loop;
  return held;
}

Deno.test("a client that only answers pings stays connected for many idle periods", async () => {
  await using server = await serverWithIdle(IDLE_MS);
  const key = await server.addUser("quiet");
  const raw = await rawLogin(server.port, "quiet", key);
  const held = await hold(raw, 8 * IDLE_MS, true);
  assertEquals(held.error, undefined, "the server closed a peer that answered every ping");
  assertEquals(held.closedByServer, false);
  assert(held.pings >= 4, `the server should keep pinging a quiet peer (saw ${held.pings})`);
  assertEquals(held.echo, { still: "here" });
});

Deno.test("a client that answers nothing is closed with timeout", async () => {
  await using server = await serverWithIdle(IDLE_MS);
  const key = await server.addUser("mute");
  const raw = await rawLogin(server.port, "mute", key);
  const held = await hold(raw, 15 * IDLE_MS, false);
  assert(held.pings >= 1, "the server should ping a quiet peer before closing it");
  assertEquals(held.error, "timeout");
  assert(held.closedByServer, "the server should close a peer that never answers");
});
