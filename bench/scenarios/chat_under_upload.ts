/**
 * Scenario 3: chat latency while a 1 GiB upload runs on the same connection
 * (target p99 < 50 ms). One client joins a room and uploads; every ~20 ms it
 * sends a chat message to that room and times the round trip until its own
 * `chat.msg` event comes back. The same probe on the idle connection is the
 * baseline.
 *
 * @module
 */
import { join } from "@std/path";
import type { ParleyClient } from "../../client/client.ts";
import { uploadFile } from "../../client/files/transfer_upload.ts";
import { spawnServer } from "../../tests/helpers.ts";
import type { BenchContext, Scenario } from "../lib/context.ts";
import { writeFanoutConfig } from "../lib/parley_fanout.ts";
import { makeFile, MiB } from "../lib/make_file.ts";
import type { Row } from "../lib/report.ts";
import { quantile, summarize } from "../lib/stats.ts";
import { CHAT_JOIN, CHAT_MSG, CHAT_SEND } from "../../protocol/ops/chat.ts";
import { FILE_RM } from "../../protocol/ops/files.ts";

const _ROOM = "probe";
const _GAP_MS = 20;
/** Longest probing phase (an upload taking longer is a failure, not a figure). */
const _MAX_MS = 180_000;

/** Times chat round trips on one client: send, wait for the echo event. */
class _ChatProbe {
  #client: ParleyClient;
  #waiting = new Map<string, () => void>();
  #seq = 0;

  constructor(client: ParleyClient) {
    this.#client = client;
    client.on(CHAT_MSG, (data) => {
      const text = (data as { text?: unknown }).text;
      if (typeof text === "string") this.#waiting.get(text)?.();
    });
  }

  /** One round trip in ms (bounded at 10 s). */
  async once(): Promise<number> {
    const text = `probe ${++this.#seq}`;
    const t0 = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const echoed = new Promise<void>((resolve, reject) => {
      this.#waiting.set(text, resolve);
      timer = setTimeout(() => reject(new Error(`no echo of "${text}" in 10 s`)), 10_000);
    });
    try {
      await Promise.all([this.#client.call(CHAT_SEND, { room: _ROOM, text }), echoed]);
      return performance.now() - t0;
    } finally {
      clearTimeout(timer);
      this.#waiting.delete(text);
    }
  }

  /** Probes every `_GAP_MS` until `done` settles, `count` probes or `_MAX_MS`; returns the times. */
  async during(done: Promise<unknown> | undefined, count: number): Promise<number[]> {
    let finished = false;
    void done?.then(() => (finished = true), () => (finished = true));
    const times: number[] = [];
    const start = performance.now();
    for (let i = 0; i < count && !finished && performance.now() - start < _MAX_MS; i++) {
      const wait = start + i * _GAP_MS - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      times.push(await this.once());
    }
    return times;
  }
}

/** The chat-under-upload scenario. */
export const chatUnderUploadScenario: Scenario = {
  id: "chat-load",
  title: "chat latency during a 1 GiB upload on the same connection",
  async run(ctx: BenchContext): Promise<Row[]> {
    const size = (ctx.quick ? 256 : 1024) * MiB;
    const dir = await Deno.makeTempDir({ dir: ctx.tmp, prefix: "chat-load-" });
    const src = join(dir, "src.bin");
    await makeFile(src, size);
    const dataDir = join(dir, "data");
    await Deno.mkdir(dataDir);
    await writeFanoutConfig(dataDir); // no flood limit on the probes
    const loadedP50: number[] = [];
    const loadedP99: number[] = [];
    const idleP50: number[] = [];
    const idleP99: number[] = [];
    let probes = 0;
    {
      await using server = await spawnServer({ dataDir, denoFlags: ctx.serverFlags ?? [] });
      await using client = await server.connect("bench");
      await client.call(CHAT_JOIN, { room: _ROOM });
      const probe = new _ChatProbe(client);
      for (let i = 0; i < ctx.runs; i++) {
        ctx.log(`chat-load run ${i + 1}/${ctx.runs}`);
        const idle = await probe.during(undefined, ctx.quick ? 50 : 150);
        idleP50.push(quantile(idle, 0.5));
        idleP99.push(quantile(idle, 0.99));
        // As `parley put` does it: hashed while sent, checked by the server at the end.
        const upload = uploadFile(client, src, `run-${i}.bin`, { overwrite: true });
        const loaded = await probe.during(upload, 100_000);
        await Promise.race([
          upload,
          new Promise((_, reject) => {
            const t = setTimeout(() => reject(new Error("upload did not finish in time")), 10_000);
            void upload.finally(() => clearTimeout(t)).catch(() => {});
          }),
        ]);
        probes += loaded.length;
        loadedP50.push(quantile(loaded, 0.5));
        loadedP99.push(quantile(loaded, 0.99));
        ctx.log(
          `chat-load: ${loaded.length} probes during the upload, p50 ${
            quantile(loaded, 0.5).toFixed(2)
          } ms, p99 ${quantile(loaded, 0.99).toFixed(2)} ms, max ${
            Math.max(...loaded).toFixed(1)
          } ms`,
        );
        await client.call(FILE_RM, { path: `run-${i}.bin` });
      }
    }
    await Deno.remove(dir, { recursive: true });
    const label = `chat round trip during ${size / MiB} MiB upload`;
    const base = "same probe, idle connection";
    return [{
      scenario: `${label}, p99`,
      unit: "ms",
      parley: summarize(loadedP99),
      baselineName: base,
      baseline: summarize(idleP99),
      lowerIsBetter: true,
      target: { text: "< 50 ms", met: (r) => r.parley.median < 50 },
      note: `${Math.round(probes / ctx.runs)} probes per upload, one every ${_GAP_MS} ms`,
    }, {
      scenario: `${label}, p50`,
      unit: "ms",
      parley: summarize(loadedP50),
      baselineName: base,
      baseline: summarize(idleP50),
      lowerIsBetter: true,
      target: { text: "report", met: () => true },
    }];
  },
};
