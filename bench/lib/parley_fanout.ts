/**
 * The Parley side of the fan-out comparison: a `parley serve` subprocess
 * whose chat flood limits are raised, N receiver clients in this process
 * joined to one room, and one sender pipelining `chat.send` calls with a
 * bounded number outstanding.
 *
 * @module
 */
import { join } from "@std/path";
import { ParleyClient } from "../../client/client.ts";
import { keyBytes, type SpawnedServer, spawnServer, transportFor } from "../../tests/helpers.ts";
import type { FanoutSystem } from "./fanout.ts";
import { CHAT_JOIN, CHAT_MSG, CHAT_SEND } from "../../protocol/ops/chat.ts";

/**
 * `chat.send` calls awaiting their reply at once: the client's own limit on
 * calls without a stream (PROTOCOL.md §6.1), which holds further calls back.
 */
export const PARLEY_SEND_WINDOW = 16;

/** The room every receiver joins. */
const _ROOM = "bench";

/** Options of {@linkcode parleyFanout}. */
export interface ParleyFanoutOptions {
  /** Data directory for the server (created by the caller, ideally on tmpfs). */
  dataDir: string;
  /** Most `chat.send` calls awaiting their reply at once. */
  window?: number;
  /** Extra Deno flags for the server process (e.g. `--cpu-prof`). */
  denoFlags?: string[];
  /** TLS, as `parley serve` runs by default (default: plaintext with the frame MAC). */
  tls?: boolean;
}

/** Writes a config.json that lifts the chat flood limits and the control-queue limit. */
export async function writeFanoutConfig(dataDir: string): Promise<void> {
  await Deno.writeTextFile(
    join(dataDir, "config.json"),
    JSON.stringify({
      chat: { ratePerSecond: 1_000_000, rateBurst: 1_000_000, historyPerRoom: 10_000 },
      limits: { maxPendingBytes: 64 * 1024 * 1024 },
    }),
  );
}

/** Starts the server and returns a fan-out system bound to it. */
export async function parleyFanout(
  options: ParleyFanoutOptions,
): Promise<FanoutSystem & { serverPids: number[] }> {
  await writeFanoutConfig(options.dataDir);
  const server: SpawnedServer = await spawnServer({
    dataDir: options.dataDir,
    args: options.tls ? [] : ["--plain"],
    denoFlags: options.denoFlags ?? [],
  });
  const transport = transportFor(server.fingerprint);
  const clients: ParleyClient[] = [];
  let sender: ParleyClient | undefined;
  const window = options.window ?? PARLEY_SEND_WINDOW;
  const inflight = new Set<Promise<unknown>>();
  const connect = async (user: string) => {
    // Accounts one at a time: each addUser opens its own store.
    const key = keyBytes(await server.addUser(user));
    const c = await ParleyClient.connect({
      host: "127.0.0.1",
      port: server.port,
      user,
      key,
      ...transport,
    });
    clients.push(c);
    return c;
  };
  return {
    serverPids: [server.process.pid],
    async receivers(n, onMessage) {
      const keys: string[] = [];
      for (let i = 0; i < n; i++) keys.push(await server.addUser(`r${i}`));
      const batch = 20;
      for (let i = 0; i < n; i += batch) {
        await Promise.all(
          keys.slice(i, i + batch).map(async (hex, j) => {
            const c = await ParleyClient.connect({
              host: "127.0.0.1",
              port: server.port,
              user: `r${i + j}`,
              key: keyBytes(hex),
              ...transport,
            });
            clients.push(c);
            c.on(CHAT_MSG, (data) => {
              const text = (data as { text?: unknown }).text;
              if (typeof text === "string") onMessage(text);
            });
            await c.call(CHAT_JOIN, { room: _ROOM });
          }),
        );
      }
    },
    async sender() {
      sender = await connect("sender");
    },
    async publish(payload) {
      const p = sender!.call(CHAT_SEND, { room: _ROOM, text: payload });
      inflight.add(p);
      void p.then(() => inflight.delete(p), () => inflight.delete(p));
      if (inflight.size >= window) await Promise.race(inflight);
    },
    async close() {
      await Promise.allSettled(inflight);
      await Promise.all(clients.map((c) => c.close()));
      await server.stop();
    },
  };
}
