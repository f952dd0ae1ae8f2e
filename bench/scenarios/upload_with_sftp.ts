/**
 * Scenario 1a: the upload scenario of bench/upload.ts (Parley against socat
 * and scp) plus an `sftp -b` upload of the same size to the loopback sshd,
 * compared with Parley's full upload time (checksummed and verified).
 *
 * @module
 */
import { join } from "@std/path";
import { uploadScenario } from "../upload.ts";
import type { BenchContext, Scenario } from "../lib/context.ts";
import { makeFile, MiB, removeQuietly } from "../lib/make_file.ts";
import type { Row } from "../lib/report.ts";
import { summarize } from "../lib/stats.ts";
import { sftpBatch, sshRuns, transferSize } from "./download.ts";

/** Upload against socat and scp (bench/upload.ts), then against sftp. */
export const uploadWithSftpScenario: Scenario = {
  id: "upload",
  title: "upload 1 GiB to tmpfs vs socat / scp / sftp",
  async run(ctx: BenchContext): Promise<Row[]> {
    const rows = await uploadScenario.run(ctx);
    // The row of the upload as `parley put` does it: the one held to the socat target.
    const full = rows.find((r) => r.target?.text.includes("socat")) ?? rows[0];
    if (!ctx.sshd || !full) return rows;
    const size = transferSize(ctx);
    const dir = await Deno.makeTempDir({ dir: ctx.tmp, prefix: "sftp-" });
    const src = join(dir, "src.bin");
    const dst = join(dir, "sftp.bin");
    await makeFile(src, size);
    const times: number[] = [];
    for (let i = 0; i < sshRuns(ctx); i++) {
      ctx.log(`upload sftp run ${i + 1}/${sshRuns(ctx)}`);
      times.push(await sftpBatch(ctx, `put ${src} ${dst}`, dir));
      await removeQuietly(dst);
    }
    await Deno.remove(dir, { recursive: true });
    rows.push({
      scenario: `upload ${size / MiB} MiB vs sftp`,
      unit: "s",
      parley: full.parley,
      baselineName: "sftp -b",
      baseline: summarize(times.map((ms) => ms / 1000)),
      lowerIsBetter: true,
      target: { text: "report", met: () => true },
    });
    return rows;
  },
};
