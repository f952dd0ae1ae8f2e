/** Files across cluster nodes, end to end: `parley put` through node A, `parley get` through B. */
import { assertEquals } from "@std/assert";
import { join } from "@std/path";
import { parleyProcessArgs } from "../helpers.ts";
import { natsAvailable, startNatsServer } from "./nats_fixture.ts";
import { addClusterUser, startParleyNode } from "./cluster_helpers.ts";

const available = natsAvailable();

async function parley(
  env: Record<string, string>,
  cwd: string,
  ...args: string[]
): Promise<{ code: number; out: string }> {
  const o = await new Deno.Command(Deno.execPath(), {
    args: parleyProcessArgs(...args),
    cwd,
    env: { NO_COLOR: "1", XDG_CONFIG_HOME: cwd, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const t = new TextDecoder();
  return { code: o.code, out: t.decode(o.stdout) + t.decode(o.stderr) };
}

Deno.test({
  name: "cluster files: put through node A, get through node B, byte-exact",
  ignore: !available,
}, async () => {
  await using nats = await startNatsServer();
  await using a = await startParleyNode(nats.urls, "a");
  await using b = await startParleyNode(nats.urls, "b");
  const key = await addClusterUser(nats.urls, "ada");
  const dir = await Deno.makeTempDir({ prefix: "parley-cluster-files-" });
  try {
    const data = new Uint8Array(3 * 1024 * 1024 + 12_345);
    for (let i = 0; i < data.length; i += 65_536) {
      crypto.getRandomValues(data.subarray(i, i + 65_536));
    }
    await Deno.writeFile(join(dir, "blob.bin"), data);
    // Each node serves TLS with its own certificate: the client pins the one it talks to.
    const env = (node: typeof a) => ({
      PARLEY_SERVER: node.server.url("ada"),
      ...node.server.clientEnv,
      PARLEY_KEY: key,
    });
    const put = await parley(env(a), dir, "put", "blob.bin");
    assertEquals(put.code, 0, put.out);
    await Deno.mkdir(join(dir, "out"));
    const get = await parley(env(b), dir, "get", "blob.bin", "out/blob.bin");
    assertEquals(get.code, 0, get.out);
    assertEquals(await Deno.readFile(join(dir, "out", "blob.bin")), data);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
