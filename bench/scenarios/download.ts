/**
 * Scenario 1b: download of 1 GiB from a tmpfs data dir (`parley get`'s code
 * path: stream, SHA-256 on both sides, write into tmpfs, rename into place)
 * against `socat` copying the file the other way over loopback TCP, and
 * `scp` / `sftp` fetching it from the loopback sshd, in the same run.
 *
 * @module
 */
import { join } from "@std/path";
import { downloadFile } from "../../client/files/transfer_download.ts";
import { spawnServer } from "../../tests/helpers.ts";
import type { BenchContext, Scenario } from "../lib/context.ts";
import { makeFile, MiB, removeQuietly } from "../lib/make_file.ts";
import { freePort, have, type ProcessGroup, run } from "../lib/procs.ts";
import type { Row } from "../lib/report.ts";
import { summarize } from "../lib/stats.ts";
import { FILE_STAT } from "../../protocol/ops/files.ts";

/** socat serving `src` on a port; the timed side is the receiving socat. */
async function _socat(src: string, dst: string, group: ProcessGroup): Promise<number> {
  const port = freePort();
  // No readiness probe: a probe connection would be the one socat accepts.
  const sender = group.spawn("socat", ["-u", `OPEN:${src}`, `TCP-LISTEN:${port},reuseaddr`]);
  await new Promise((r) => setTimeout(r, 300));
  const t0 = performance.now();
  await run("socat", ["-u", `TCP:127.0.0.1:${port}`, `CREATE:${dst}`]);
  const ms = performance.now() - t0;
  await sender.status;
  await removeQuietly(dst);
  return ms;
}

async function _scp(src: string, dst: string, ctx: BenchContext): Promise<number> {
  const t0 = performance.now();
  await run("scp", ["-q", ...ctx.sshd!.scpArgs, `root@127.0.0.1:${src}`, dst]);
  const ms = performance.now() - t0;
  await removeQuietly(dst);
  return ms;
}

/** `sftp -b BATCH` running one `get` (or `put`) command. */
export async function sftpBatch(
  ctx: BenchContext,
  command: string,
  dir: string,
): Promise<number> {
  const batch = join(dir, "sftp-batch");
  await Deno.writeTextFile(batch, command + "\n");
  const t0 = performance.now();
  await run("sftp", ["-q", "-b", batch, ...ctx.sshd!.scpArgs, "root@127.0.0.1"]);
  return performance.now() - t0;
}

/** Transfer sizes: 1 GiB, or 256 MiB with `--quick`. */
export function transferSize(ctx: BenchContext): number {
  return (ctx.quick ? 256 : 1024) * MiB;
}

/** Runs of the slow ssh baselines (each takes tens of seconds per GiB). */
export function sshRuns(ctx: BenchContext): number {
  return ctx.quick ? 1 : Math.max(2, Math.min(ctx.runs, 3));
}

/** The download scenario. */
export const downloadScenario: Scenario = {
  id: "download",
  title: "download 1 GiB from tmpfs vs socat / scp / sftp",
  async run(ctx: BenchContext): Promise<Row[]> {
    const size = transferSize(ctx);
    const label = `${size / MiB} MiB`;
    const dir = await Deno.makeTempDir({ dir: ctx.tmp, prefix: "download-" });
    const dataDir = join(dir, "data");
    const home = join(dataDir, "files", "home", "bench");
    await Deno.mkdir(home, { recursive: true });
    // The file sits in the user's home on the server: the same bytes every tool reads.
    const src = join(home, "big.bin");
    await makeFile(src, size);
    const dst = join(dir, "got.bin");
    const parley: number[] = [];
    const socat: number[] = [];
    const scp: number[] = [];
    const sftp: number[] = [];
    {
      // Plaintext (with the frame MAC), as socat: the TLS rows are in encrypted.ts.
      await using server = await spawnServer({
        dataDir,
        args: ["--plain"],
        denoFlags: ctx.serverFlags ?? [],
      });
      await using client = await server.connect("bench");
      const st = (await client.call(FILE_STAT, { path: "big.bin" })) as { size: number };
      if (st.size !== size) throw new Error(`server sees ${st.size} bytes, expected ${size}`);
      for (let i = 0; i < ctx.runs; i++) {
        ctx.log(`download run ${i + 1}/${ctx.runs}`);
        const t0 = performance.now();
        const r = await downloadFile(client, { path: "big.bin" }, dst, { overwrite: true });
        parley.push(performance.now() - t0);
        if (r.size !== size) throw new Error(`downloaded ${r.size} bytes, expected ${size}`);
        await removeQuietly(dst);
        if (await have("socat")) socat.push(await _socat(src, dst, ctx.group));
      }
    }
    if (ctx.sshd) {
      for (let i = 0; i < sshRuns(ctx); i++) {
        ctx.log(`download scp/sftp run ${i + 1}/${sshRuns(ctx)}`);
        scp.push(await _scp(src, dst, ctx));
        sftp.push(await sftpBatch(ctx, `get ${src} ${dst}`, dir));
        await removeQuietly(dst);
      }
    }
    await Deno.remove(dir, { recursive: true });
    const s = (v: number[]) => summarize(v.map((ms) => ms / 1000));
    const rows: Row[] = [{
      scenario: `download ${label} (send + hash + verify)`,
      unit: "s",
      parley: s(parley),
      baselineName: socat.length ? "socat" : undefined,
      baseline: socat.length ? s(socat) : undefined,
      lowerIsBetter: true,
      target: {
        text: "≤ 1.5× socat (as upload)",
        met: (r) => r.baseline !== undefined && r.parley.median <= 1.5 * r.baseline.median,
      },
      note: `${(size / 1e6 / s(parley).median).toFixed(0)} MB/s`,
    }];
    if (scp.length) {
      rows.push({
        scenario: `download ${label} vs scp`,
        unit: "s",
        parley: s(parley),
        baselineName: "scp",
        baseline: s(scp),
        lowerIsBetter: true,
        target: {
          text: "≥ 3× faster than scp (as upload)",
          met: (r) => r.baseline !== undefined && 3 * r.parley.median <= r.baseline.median,
        },
      }, {
        scenario: `download ${label} vs sftp`,
        unit: "s",
        parley: s(parley),
        baselineName: "sftp -b",
        baseline: s(sftp),
        lowerIsBetter: true,
        target: { text: "report", met: () => true },
      });
    }
    return rows;
  },
};
