/**
 * `parley cluster import` throughput: a data dir with MESSAGES chat messages (two rooms and a DM
 * pair) and FILES files of SIZE_MIB each, written through the embedded backend, imported by the
 * real command (its own process) into a 3-node NATS cluster (R3) or, with `--single`, one
 * nats-server (R1). Prints the command's summary (messages/s, MiB/s) and the wall time.
 *
 *     deno run --allow-net=127.0.0.1 --allow-read --allow-write --allow-run --allow-env --allow-sys \
 *       bench/cluster_import.ts [--messages 20000] [--files 8] [--size-mib 16] [--single]
 *
 * @module
 */
import { parseArgs } from "@std/cli/parse-args";
import { join } from "@std/path";
import { loadConfig } from "../server/config.ts";
import { openEmbeddedBackend } from "../server/embedded/mod.ts";
import { Logger } from "../server/log.ts";
import { startNatsCluster, startNatsServer } from "../tests/cluster/nats_fixture.ts";
import { parleyProcessArgs } from "../tests/helpers.ts";

const args = parseArgs(Deno.args, {
  string: ["messages", "files", "size-mib"],
  boolean: ["single"],
});
const messages = Number(args.messages ?? 20_000);
const files = Number(args.files ?? 8);
const sizeMib = Number(args["size-mib"] ?? 16);

const dataDir = await Deno.makeTempDir({ prefix: "parley-bench-import-" });
try {
  await Deno.writeTextFile(
    join(dataDir, "config.json"),
    JSON.stringify({ chat: { historyPerRoom: messages, dmHistoryPerUser: messages } }),
  );
  {
    const config = await loadConfig({ dataDir });
    await using backend = await openEmbeddedBackend(config, new Logger({ level: "error" }));
    await backend.accounts.add("ada");
    await backend.accounts.add("bob");
    const text = "x".repeat(80);
    for (let i = 0; i < messages; i++) {
      const where = i % 3 === 0 ? { room: "lobby" } : i % 3 === 1 ? { room: "dev" } : { to: "bob" };
      await backend.chat.log.append({ ...where, from: "ada", text: `${i} ${text}`, ts: i });
    }
    const chunk = new Uint8Array(1048576);
    for (let f = 0; f < files; f++) {
      const path = join(dataDir, "files", "home", "ada", `f${f}.bin`);
      await Deno.mkdir(join(dataDir, "files", "home", "ada"), { recursive: true });
      using file = await Deno.open(path, { write: true, create: true });
      for (let m = 0; m < sizeMib; m++) {
        crypto.getRandomValues(chunk.subarray(0, 65536));
        chunk.copyWithin(65536, 0, 65536 * 15);
        for (let off = 0; off < chunk.byteLength;) off += await file.write(chunk.subarray(off));
      }
    }
  }
  await using nats = args.single ? await startNatsServer() : await startNatsCluster();
  const started = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: parleyProcessArgs(
      "cluster",
      "import",
      "--data",
      dataDir,
      "--cluster",
      nats.urls.join(","),
    ),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const wall = (performance.now() - started) / 1000;
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  console.log(text.split("\n").filter((l) => /^ {2}(messages|files) |^Checked/.test(l)).join("\n"));
  console.log(
    `${args.single ? "R1 (one nats-server)" : "R3 (3-node cluster)"}: ${messages} messages, ` +
      `${files} × ${sizeMib} MiB files, exit ${out.code}, wall ${wall.toFixed(1)} s ` +
      "(process start, reading, import and the full check)",
  );
  if (out.code !== 0) console.log(text);
} finally {
  await Deno.remove(dataDir, { recursive: true });
}
