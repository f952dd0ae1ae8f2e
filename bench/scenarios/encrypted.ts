/**
 * Encrypted by default: upload and download of 256 MiB with `parley serve`
 * in its default mode (TLS bound to the login, no frame MAC) against the
 * same on `--plain` (frame MAC on), against a bare TLS pipe in Deno (the
 * cost of TLS alone, no protocol), and against scp and sftp to the loopback
 * sshd (encrypted too; skipped with a message when openssh is missing).
 * Both Parley runs verify SHA-256 as `parley put`/`get` do.
 *
 * @module
 */
import { join } from "@std/path";
import { downloadFile } from "../../client/files/transfer_download.ts";
import { uploadFile } from "../../client/files/transfer_upload.ts";
import { FILE_RM } from "../../protocol/ops/files.ts";
import { loadTlsIdentity } from "../../server/tls_identity.ts";
import { type SpawnedServer, spawnServer } from "../../tests/helpers.ts";
import type { BenchContext, Scenario } from "../lib/context.ts";
import { makeFile, MiB, removeQuietly } from "../lib/make_file.ts";
import { run } from "../lib/procs.ts";
import type { Row } from "../lib/report.ts";
import { summarize } from "../lib/stats.ts";
import { sftpBatch, sshRuns } from "./download.ts";

const SIZE = 256 * MiB;

/** Milliseconds to move `size` bytes through Deno's own TLS, listener to client, and back. */
async function _bareTls(certPem: string, keyPem: string, size: number, up: boolean) {
  const listener = Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert: certPem, key: keyPem });
  const port = (listener.addr as Deno.NetAddr).port;
  const chunk = new Uint8Array(256 * 1024);
  const send = async (c: Deno.Conn) => {
    for (let sent = 0; sent < size;) {
      const n = Math.min(chunk.byteLength, size - sent);
      for (let off = 0; off < n;) off += await c.write(chunk.subarray(off, n));
      sent += n;
    }
    await (c as Deno.TlsConn).closeWrite();
  };
  const drain = async (c: Deno.Conn) => {
    const buf = new Uint8Array(256 * 1024);
    let got = 0;
    for (let n = await c.read(buf); n !== null; n = await c.read(buf)) got += n;
    if (got !== size) throw new Error(`bare TLS moved ${got} bytes, not ${size}`);
  };
  const t0 = performance.now();
  const accepted = listener.accept();
  const client = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [certPem] });
  const server = await accepted;
  try {
    await Promise.all(up ? [send(client), drain(server)] : [send(server), drain(client)]);
  } finally {
    client.close();
    server.close();
    listener.close();
  }
  return performance.now() - t0;
}

async function _scp(ctx: BenchContext, from: string, to: string): Promise<number> {
  const t0 = performance.now();
  await run("scp", ["-q", ...ctx.sshd!.scpArgs, from, to]);
  return performance.now() - t0;
}

/** Upload and download times (ms) of one server, `runs` times each. */
async function _parley(server: SpawnedServer, src: string, dst: string, runs: number) {
  await using client = await server.connect("bench");
  const up: number[] = [];
  const down: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await uploadFile(client, src, "big.bin", { overwrite: true });
    up.push(performance.now() - t0);
    const t1 = performance.now();
    await downloadFile(client, { path: "big.bin" }, dst, { overwrite: true });
    down.push(performance.now() - t1);
    await removeQuietly(dst);
  }
  await client.call(FILE_RM, { path: "big.bin" });
  return { up, down };
}

/** The scenario. */
export const encryptedScenario: Scenario = {
  id: "tls",
  title: "upload/download 256 MiB over TLS (default) vs --plain, bare TLS, scp, sftp",
  async run(ctx: BenchContext): Promise<Row[]> {
    const dir = await Deno.makeTempDir({ dir: ctx.tmp, prefix: "tls-" });
    const src = join(dir, "src.bin");
    const dst = join(dir, "got.bin");
    await makeFile(src, SIZE);
    const tlsDir = join(dir, "tls-data");
    const plainDir = join(dir, "plain-data");
    let tls, plain;
    {
      ctx.log("tls: default (TLS) server");
      await using server = await spawnServer({ dataDir: tlsDir, denoFlags: ctx.serverFlags ?? [] });
      tls = await _parley(server, src, dst, ctx.runs);
    }
    {
      ctx.log("tls: --plain server (frame MAC)");
      await using server = await spawnServer({
        dataDir: plainDir,
        args: ["--plain"],
        denoFlags: ctx.serverFlags ?? [],
      });
      plain = await _parley(server, src, dst, ctx.runs);
    }
    const identity = await loadTlsIdentity(tlsDir);
    if (!identity) throw new Error("the TLS server made no certificate");
    const bareUp: number[] = [];
    const bareDown: number[] = [];
    for (let i = 0; i < ctx.runs; i++) {
      bareUp.push(await _bareTls(identity.certPem, identity.keyPem, SIZE, true));
      bareDown.push(await _bareTls(identity.certPem, identity.keyPem, SIZE, false));
    }
    const scpUp: number[] = [];
    const scpDown: number[] = [];
    const sftpUp: number[] = [];
    const sftpDown: number[] = [];
    if (ctx.sshd) {
      for (let i = 0; i < sshRuns(ctx); i++) {
        ctx.log(`tls: scp/sftp run ${i + 1}/${sshRuns(ctx)}`);
        const remote = join(dir, "remote.bin");
        scpUp.push(await _scp(ctx, src, `root@127.0.0.1:${remote}`));
        scpDown.push(await _scp(ctx, `root@127.0.0.1:${remote}`, dst));
        await removeQuietly(dst);
        await removeQuietly(remote);
        sftpUp.push(await sftpBatch(ctx, `put ${src} ${remote}`, dir));
        sftpDown.push(await sftpBatch(ctx, `get ${remote} ${dst}`, dir));
        await removeQuietly(dst);
        await removeQuietly(remote);
      }
    } else {
      ctx.log("tls: no loopback sshd (install openssh-server): skipping the scp and sftp rows");
    }
    await Deno.remove(dir, { recursive: true });
    const s = (v: number[]) => summarize(v.map((ms) => ms / 1000));
    const mbps = (v: number[]) => `${(SIZE / 1e6 / s(v).median).toFixed(0)} MB/s`;
    const rows: Row[] = [];
    for (
      const [dirName, t, p, bare, scp, sftp] of [
        ["upload", tls.up, plain.up, bareUp, scpUp, sftpUp],
        ["download", tls.down, plain.down, bareDown, scpDown, sftpDown],
      ] as const
    ) {
      const name = `${dirName} 256 MiB, TLS (default)`;
      rows.push({
        scenario: `${name} vs --plain with frame MAC`,
        unit: "s",
        parley: s([...t]),
        baselineName: "parley --plain",
        baseline: s([...p]),
        lowerIsBetter: true,
        target: { text: "report", met: () => true },
        note: `TLS ${mbps([...t])}, plain+MAC ${mbps([...p])}; both SHA-256 verified`,
      }, {
        scenario: `${name} vs a bare TLS pipe`,
        unit: "s",
        parley: s([...t]),
        baselineName: "Deno TLS pipe",
        baseline: s([...bare]),
        lowerIsBetter: true,
        target: { text: "report", met: () => true },
        note: "the pipe moves bytes only: no protocol, no hashing, no disk",
      });
      if (scp.length) {
        rows.push({
          scenario: `${name} vs scp`,
          unit: "s",
          parley: s([...t]),
          baselineName: "scp",
          baseline: s([...scp]),
          lowerIsBetter: true,
          target: { text: "report", met: () => true },
        }, {
          scenario: `${name} vs sftp`,
          unit: "s",
          parley: s([...t]),
          baselineName: "sftp -b",
          baseline: s([...sftp]),
          lowerIsBetter: true,
          target: { text: "report", met: () => true },
        });
      }
    }
    return rows;
  },
};
