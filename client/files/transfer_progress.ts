/**
 * Progress display for transfers: a bar with bytes, rate and ETA on a
 * terminal (stderr), nothing while piped, and one summary line at the end.
 *
 * @module
 */
// @deno-types="@types/cli-progress"
import cliProgress from "cli-progress";
import process from "node:process";
import type { TransferProgress, TransferResult } from "./transfer_common.ts";

export { formatBytes } from "../../protocol/format_bytes.ts";
import { formatBytes } from "../../protocol/format_bytes.ts";

/** The one-line summary of a finished transfer. */
export function summaryLine(verb: string, r: TransferResult): string {
  const secs = r.ms / 1000;
  const rate = secs > 0 ? r.transferred / secs : 0;
  const resumed = r.resumedFrom > 0 ? `, resumed at ${formatBytes(r.resumedFrom)}` : "";
  return `${verb} ${r.local} ${verb === "uploaded" ? "->" : "<-"} ${r.remote}: ` +
    `${formatBytes(r.size)} in ${secs.toFixed(2)} s (${formatBytes(rate)}/s${resumed}), ` +
    `sha256 ${r.sha256}`;
}

/** A progress display; `update` is cheap to call often. */
export interface ProgressDisplay {
  update(p: TransferProgress): void;
  stop(): void;
}

/** A bar on a terminal, or a no-op. */
export function createProgress(label: string, enabled: boolean): ProgressDisplay {
  if (!enabled) return { update() {}, stop() {} };
  let bar: cliProgress.SingleBar | undefined;
  let phase = "";
  let startDone = 0;
  let startTime = 0;
  return {
    update(p) {
      if (p.phase !== phase) {
        bar?.stop();
        phase = p.phase;
        bar = new cliProgress.SingleBar({
          stream: process.stderr,
          format: `${p.phase === "hash" ? "checksum" : label} [{bar}] {percentage}% ` +
            "{done}/{all} {speed}/s ETA {eta_formatted}",
          barsize: 24,
          hideCursor: true,
          clearOnComplete: true,
          etaBuffer: 50,
          fps: 8,
        }, cliProgress.Presets.shades_classic);
        startDone = p.done;
        startTime = Date.now();
        bar.start(p.total, p.done, {
          done: formatBytes(p.done),
          all: formatBytes(p.total),
          speed: "-",
        });
      }
      const secs = (Date.now() - startTime) / 1000;
      bar!.update(p.done, {
        done: formatBytes(p.done),
        all: formatBytes(p.total),
        speed: secs > 0 ? formatBytes((p.done - startDone) / secs) : "-",
      });
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}

/** Bytes per second over the last few seconds of a transfer's progress. */
export class RateMeter {
  #samples: { t: number; done: number }[] = [];
  #phase = "";
  #windowMs: number;

  constructor(windowMs = 3000) {
    this.#windowMs = windowMs;
  }

  /** Records `p` at time `now`; a new phase starts afresh. */
  update(p: TransferProgress, now = Date.now()): void {
    if (p.phase !== this.#phase) {
      this.#phase = p.phase;
      this.#samples = [];
    }
    this.#samples.push({ t: now, done: p.done });
    while (this.#samples.length > 2 && now - this.#samples[1]!.t > this.#windowMs) {
      this.#samples.shift();
    }
  }

  /** The rate in bytes per second (0 until two samples are apart). */
  get rate(): number {
    const a = this.#samples[0];
    const b = this.#samples.at(-1);
    if (!a || !b || b.t - a.t < 200) return 0;
    return Math.max(0, (b.done - a.done) / ((b.t - a.t) / 1000));
  }
}

/** `1:05`, `12 s`, or `-` for an unknown time. */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "-";
  const s = Math.ceil(seconds);
  if (s < 60) return `${s} s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/**
 * One line describing a transfer in flight: bar (when `barWidth` > 0),
 * percentage, bytes, rate and ETA, e.g.
 * `[#######-----] 58% 5.8 MiB/10 MiB 1.2 MiB/s ETA 4 s`.
 */
export function progressText(p: TransferProgress, rate: number, barWidth = 0): string {
  const frac = p.total > 0 ? Math.min(1, p.done / p.total) : 1;
  const filled = Math.round(frac * barWidth);
  const bar = barWidth > 0 ? `[${"#".repeat(filled)}${"-".repeat(barWidth - filled)}] ` : "";
  const eta = rate > 0 ? formatEta((p.total - p.done) / rate) : "-";
  const what = p.phase === "hash" ? "checksum " : "";
  return `${what}${bar}${Math.floor(frac * 100)}% ${formatBytes(p.done)}/${formatBytes(p.total)} ` +
    `${rate > 0 ? `${formatBytes(rate)}/s` : "-/s"} ETA ${eta}`;
}
