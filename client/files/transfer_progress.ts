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
