/**
 * Put/get throughput of the NATS files backend for one file (default
 * 64 MiB), on one nats-server (R1) and on a 3-server cluster (R3), through
 * the backend interface (64 KiB writes, as a client upload arrives; the read
 * hashes what it receives). Prints MB/s (1 MB = 2^20 bytes), best of the runs.
 *
 *     deno run --allow-net=127.0.0.1 --allow-read --allow-write --allow-run --allow-env --allow-sys \
 *       bench/nats_files.ts [MiB] [runs]
 *
 * @module
 */
import { createHash } from "node:crypto";
import { openNatsFiles } from "../server/nats/files.ts";
import { bytesOf, ROOMY, sha256Hex } from "../tests/backend/files_contract.ts";
import { connectTo } from "../tests/backend/files_nats_fixture.ts";
import { startNatsCluster, startNatsServer } from "../tests/cluster/nats_fixture.ts";

const mib = Number(Deno.args[0] ?? 64);
const runs = Number(Deno.args[1] ?? 3);
const data = bytesOf(mib << 20, 3);
const sha256 = await sha256Hex(data);

for (const replicas of [1, 3]) {
  await using cluster = replicas === 1 ? await startNatsServer() : await startNatsCluster();
  const nc = await connectTo([cluster.urls[0]!]);
  const files = await openNatsFiles(nc, { node: "bench", replicas });
  let put = 0;
  let get = 0;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    {
      await using up = await files.store.beginUpload(
        {
          user: "b",
          parts: [`f${i}`],
          size: data.byteLength,
          id: { sha256 },
          overwrite: false,
          parents: false,
        },
        { offset: 0, limits: { ...ROOMY, quotaBytes: 2 ** 40 }, hashGate: (w) => w() },
      );
      for (let off = 0; off < data.byteLength; off += 65536) {
        await up.write(data.subarray(off, off + 65536));
      }
      await up.finish(sha256);
    }
    const t1 = performance.now();
    await using r = await files.store.open("b", [`f${i}`]);
    const h = createHash("sha256");
    for await (const c of r.read()) h.update(c);
    if (h.digest("hex") !== sha256) throw new Error("read back differs");
    const t2 = performance.now();
    put = Math.max(put, mib / ((t1 - t0) / 1000));
    get = Math.max(get, mib / ((t2 - t1) / 1000));
  }
  console.log(
    `R${replicas}: ${mib} MiB put ${put.toFixed(1)} MB/s, get ${
      get.toFixed(1)
    } MB/s (best of ${runs})`,
  );
  await files.close();
  await nc.close();
}
