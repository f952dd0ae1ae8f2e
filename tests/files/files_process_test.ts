import { assertEquals, assertRejects } from "@std/assert";
import { join } from "@std/path";
import { ParleyClient } from "../../client/client.ts";
import { uploadFile } from "../../client/files/transfer_upload.ts";
import { keyBytes, ROOT, type SpawnedServer, spawnServer, startTestServer } from "../helpers.ts";
import { exists, makeFile, sha256File, tempDir } from "./files_fixtures.ts";

const MiB = 1024 * 1024;

async function rssMiB(pid: number): Promise<number> {
  const out = await new Deno.Command("cat", { args: [`/proc/${pid}/status`], stdout: "piped" })
    .output();
  const m = /VmRSS:\s+(\d+) kB/.exec(new TextDecoder().decode(out.stdout));
  return m ? Number(m[1]) / 1024 : 0;
}

async function partialBytes(dataDir: string): Promise<number> {
  let n = 0;
  try {
    for await (const e of Deno.readDir(join(dataDir, "files", ".parley-tmp"))) {
      if (e.name.endsWith(".part")) {
        n += (await Deno.stat(join(dataDir, "files", ".parley-tmp", e.name))).size;
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return n;
}

function connectTo(server: SpawnedServer, key: string): Promise<ParleyClient> {
  return ParleyClient.connect({
    host: "127.0.0.1",
    port: server.port,
    user: "ada",
    key: keyBytes(key),
    ...server.clientOptions,
  });
}

Deno.test("a 1 GiB upload keeps the server process's memory bounded", async () => {
  await using tmp = await tempDir();
  await using server = await spawnServer();
  const key = await server.addUser("ada");
  const src = join(tmp.path, "1g.bin");
  await makeFile(src, 1024 * MiB, 7);
  await using c = await connectTo(server, key);
  let peak = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, await rssMiB(server.process.pid));
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    const r = await uploadFile(c, src, "1g.bin");
    assertEquals(r.size, 1024 * MiB);
  } finally {
    sampling = false;
    await sampler;
  }
  console.log(`server peak RSS during a 1 GiB upload: ${peak.toFixed(1)} MiB`);
  assertEquals(peak > 0 && peak < 300, true, `peak RSS ${peak} MiB`);
  assertEquals(
    await sha256File(join(server.dataDir, "files", "home", "ada", "1g.bin")),
    await sha256File(src),
  );
});

Deno.test("an upload resumes after the client process is killed mid-upload", async () => {
  await using t = await startTestServer();
  await using tmp = await tempDir();
  const key = await t.addUser("ada");
  const src = join(tmp.path, "big.bin");
  const size = 256 * MiB + 11;
  await makeFile(src, size, 3);
  const put = (args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", join(ROOT, "main.ts"), "put", "--json", src, "big.bin", ...args],
      env: { PARLEY_SERVER: t.url("ada"), ...t.clientEnv, PARLEY_KEY: key, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    });
  const child = put([]).spawn();
  let killed = false;
  for (let i = 0; i < 3000; i++) {
    if (await partialBytes(t.dataDir) > 32 * MiB) {
      child.kill("SIGKILL");
      killed = true;
      break;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  const status = await child.output();
  assertEquals(killed, true, "the upload should still be running when the client is killed");
  assertEquals(status.signal, "SIGKILL");
  assertEquals(await exists(join(t.dataDir, "files", "home", "ada", "big.bin")), false);
  // The server notices the dead connection asynchronously; `put` retries while busy.
  const again = await put([]).output();
  const out = JSON.parse(new TextDecoder().decode(again.stdout));
  assertEquals(again.code, 0, new TextDecoder().decode(again.stderr));
  assertEquals(out.ok, true);
  assertEquals(out.resumedFrom > 0, true, JSON.stringify(out));
  assertEquals(
    await sha256File(join(t.dataDir, "files", "home", "ada", "big.bin")),
    await sha256File(src),
  );
});

Deno.test("an upload resumes after the server is killed mid-upload and restarted", async () => {
  await using tmp = await tempDir();
  const dataDir = join(tmp.path, "data");
  await Deno.mkdir(dataDir);
  const src = join(tmp.path, "big.bin");
  const size = 192 * MiB + 5;
  await makeFile(src, size, 8);
  let key: string;
  {
    await using server = await spawnServer({ dataDir });
    key = await server.addUser("ada");
    await using c = await connectTo(server, key);
    let stopping: Promise<unknown> | undefined;
    await assertRejects(() =>
      uploadFile(c, src, "big.bin", {
        onProgress: (p) => {
          if (p.phase === "send" && p.done > 48 * MiB) stopping ??= server.stop("SIGKILL");
        },
      })
    );
    assertEquals((await stopping as Deno.CommandStatus).signal, "SIGKILL");
  }
  const home = join(dataDir, "files", "home", "ada");
  assertEquals(await exists(join(home, "big.bin")), false);
  assertEquals(await partialBytes(dataDir) > 0, true);
  await using server = await spawnServer({ dataDir });
  await using c = await connectTo(server, key);
  const r = await uploadFile(c, src, "big.bin");
  assertEquals(r.resumedFrom > 0, true);
  assertEquals(await sha256File(join(home, "big.bin")), await sha256File(src));
  assertEquals(await partialBytes(dataDir), 0);
});
