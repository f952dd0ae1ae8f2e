/**
 * Upload benchmark (DESIGN.md §9): 1 GiB to a tmpfs data dir through a real
 * `parley serve` process, with per-frame MAC and the SHA-256 check, timed
 * against `socat` copying the same file over loopback TCP into tmpfs and,
 * when a local sshd is available, `scp`, all in the same run.
 *
 * Runs as a scenario of `deno task bench` (`uploadScenario`) or alone:
 * `deno run -A bench/upload.ts [--size-mib N] [--runs N]` (installs socat
 * with apt-get when missing and run as root).
 *
 * @module
 */
import { parseArgs } from "@std/cli/parse-args";
import { join } from "@std/path";
import { hashLocalFile } from "../client/files/transfer_common.ts";
import { uploadFile } from "../client/files/transfer_upload.ts";
import { spawnServer } from "../tests/helpers.ts";
import type { BenchContext, Scenario } from "./lib/context.ts";
import { freePort, have, ProcessGroup, run } from "./lib/procs.ts";
import { formatTable, type Row } from "./lib/report.ts";
import { mountTmpfs } from "./lib/setup.ts";
import { startSshd } from "./lib/sshd.ts";
import { summarize } from "./lib/stats.ts";
import { FILE_RM } from "../protocol/ops/files.ts";

const MiB = 1024 * 1024;

async function _makeFile(path: string, size: number): Promise<void> {
  using f = await Deno.open(path, { write: true, create: true, truncate: true });
  const block = crypto.getRandomValues(new Uint8Array(MiB).subarray(0, 65536));
  const big = new Uint8Array(MiB);
  for (let i = 0; i < 16; i++) big.set(block, i * 65536);
  for (let left = size; left > 0; left -= MiB) {
    big[0] = left & 0xff;
    await f.write(big.subarray(0, Math.min(MiB, left)));
  }
}

async function _socat(src: string, dst: string, group: ProcessGroup): Promise<number> {
  const port = freePort();
  // No readiness probe: a probe connection would be the one socat accepts.
  const listener = group.spawn("socat", ["-u", `TCP-LISTEN:${port},reuseaddr`, `CREATE:${dst}`]);
  await new Promise((r) => setTimeout(r, 300));
  const t0 = performance.now();
  await run("socat", ["-u", `OPEN:${src}`, `TCP:127.0.0.1:${port}`]);
  await listener.status;
  const ms = performance.now() - t0;
  await Deno.remove(dst);
  return ms;
}

async function _scp(src: string, dst: string, ctx: BenchContext): Promise<number> {
  const args = ctx.sshd!.sshArgs.map((a) => a === "-p" ? "-P" : a);
  const t0 = performance.now();
  await run("scp", ["-q", ...args, src, `root@127.0.0.1:${dst}`]);
  const ms = performance.now() - t0;
  await Deno.remove(dst);
  return ms;
}

/** The upload scenario. */
export const uploadScenario: Scenario = {
  id: "upload",
  title: "upload 1 GiB to tmpfs vs socat / scp",
  async run(ctx: BenchContext): Promise<Row[]> {
    const size = (ctx.quick ? 256 : 1024) * MiB;
    const label = `${size / MiB} MiB`;
    const dir = await Deno.makeTempDir({ dir: ctx.tmp, prefix: "upload-" });
    const src = join(dir, "src.bin");
    await _makeFile(src, size);
    const dataDir = join(dir, "data");
    await Deno.mkdir(dataDir);
    // Plaintext (with the frame MAC), as socat: the TLS rows are in scenarios/encrypted.ts.
    await using server = await spawnServer({ dataDir, args: ["--plain"] });
    await using client = await server.connect("bench");
    const total: number[] = [];
    const sending: number[] = [];
    const socat: number[] = [];
    const scp: number[] = [];
    for (let i = 0; i < ctx.runs; i++) {
      ctx.log(`upload run ${i + 1}/${ctx.runs}`);
      // As `parley put` does: the client hashes while it sends, the server checks the trailer.
      const t0 = performance.now();
      const r = await uploadFile(client, src, `run-${i}.bin`);
      total.push(performance.now() - t0);
      await client.call(FILE_RM, { path: `run-${i}.bin` });
      // As when the checksum is already known (e.g. /share): no client hashing at all.
      const { sha256 } = await hashLocalFile(src);
      if (sha256 !== r.sha256) throw new Error("upload reported a different SHA-256");
      const t1 = performance.now();
      await uploadFile(client, src, `known-${i}.bin`, { sha256 });
      sending.push(performance.now() - t1);
      await client.call(FILE_RM, { path: `known-${i}.bin` });
      if (await have("socat")) socat.push(await _socat(src, join(dir, "socat.bin"), ctx.group));
      if (ctx.sshd) scp.push(await _scp(src, join(dir, "scp.bin"), ctx));
    }
    const s = (v: number[]) => summarize(v.map((ms) => ms / 1000));
    const rows: Row[] = [{
      scenario: `upload ${label} (hashed while sent, verified)`,
      unit: "s",
      parley: s(total),
      baselineName: socat.length ? "socat" : undefined,
      baseline: socat.length ? s(socat) : undefined,
      lowerIsBetter: true,
      target: {
        text: "≤ 1.5× socat",
        met: (r) => r.baseline !== undefined && r.parley.median <= 1.5 * r.baseline.median,
      },
      note: "client hashes while sending; server checks MACs and the SHA-256 trailer",
    }, {
      scenario: `upload ${label} (send + verify, checksum known)`,
      unit: "s",
      parley: s(sending),
      baselineName: socat.length ? "socat" : undefined,
      baseline: socat.length ? s(socat) : undefined,
      lowerIsBetter: true,
      note: "as when the client already knows the file's SHA-256",
    }];
    if (scp.length) {
      rows.push({
        scenario: `upload ${label} vs scp`,
        unit: "s",
        parley: s(total),
        baselineName: "scp",
        baseline: s(scp),
        lowerIsBetter: true,
        target: {
          text: "≥ 3× faster than scp",
          met: (r) => r.baseline !== undefined && 3 * r.parley.median <= r.baseline.median,
        },
      });
    }
    await Deno.remove(dir, { recursive: true });
    return rows;
  },
};

if (import.meta.main) {
  const flags = parseArgs(Deno.args, { string: ["runs", "size-mib"], boolean: ["quick", "help"] });
  if (flags.help) {
    console.log("Usage: deno run -A bench/upload.ts [--quick] [--runs N]");
    Deno.exit(0);
  }
  const log = (m: string) => console.error(`bench: ${m}`);
  if (!(await have("socat")) && Deno.uid() === 0) {
    log("installing socat");
    await run("apt-get", ["install", "-y", "-qq", "socat"], {
      env: { DEBIAN_FRONTEND: "noninteractive" },
    }).catch((e) => log(`apt-get: ${(e as Error).message}`));
  }
  await using group = new ProcessGroup();
  // Not /dev/shm: Deno asks for --allow-all for anything under /dev.
  const tmp = await Deno.makeTempDir({ prefix: "parley-upload-" });
  const mounted = await mountTmpfs(tmp, log);
  const sshd = await startSshd(group).catch(() => undefined);
  try {
    const rows = await uploadScenario.run({
      quick: Boolean(flags.quick),
      runs: Number(flags.runs ?? 3),
      group,
      sshd,
      tmp,
      log,
    });
    console.log(formatTable(rows));
  } finally {
    if (mounted) await run("umount", [tmp]).catch((e) => log(`umount: ${e.message}`));
    await Deno.remove(tmp, { recursive: true });
    if (sshd) await Deno.remove(sshd.dir, { recursive: true }).catch(() => {});
  }
}
