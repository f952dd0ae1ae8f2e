/** `parley serve --cluster`: start-up against a real nats-server, and its refusals. */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { natsAvailable, startNatsServer } from "./nats_fixture.ts";
import { serveFlags } from "../helpers.ts";
import { addClusterUser, clusterUser, connectNodes, startParleyNode } from "./cluster_helpers.ts";

const available = natsAvailable();

Deno.test({
  name: "serve --cluster: two nodes on one NATS share accounts added with parley user --cluster",
  ignore: !available,
}, async () => {
  await using nats = await startNatsServer();
  await using a = await startParleyNode(nats.urls, "alpha", ["--log-level", "info"]);
  await using b = await startParleyNode(nats.urls, "beta");
  const text = a.output.join("\n");
  assertStringIncludes(text, "cluster node alpha on " + nats.urls[0]);
  assertStringIncludes(text, "acknowledges writes before fsync");
  assertStringIncludes(text, 'version="2.');
  // The first node created the admin account in NATS; the second found it.
  assertStringIncludes(text, "Created the first account: admin");
  assert(!b.output.join("\n").includes("Created the first account"), b.output.join("\n"));
  const key = await addClusterUser(nats.urls, "ada");
  const list = await clusterUser(nats.urls, "list", "--json");
  assertEquals(
    (JSON.parse(list) as { name: string }[]).map((u) => u.name).sort(),
    ["ada", "admin"],
  );
  for (const node of [a, b]) {
    const client = await connectNodes([node], "ada", key);
    try {
      assertEquals(client.server.port, node.port);
      await client.call("chat.rooms", {});
    } finally {
      await client.close();
    }
  }
});

Deno.test({
  name: "serve --cluster: unreachable NATS exits 1 with a clear message; bad flags exit 2",
  ignore: !available,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-cluster-bad-" });
  const run = async (...args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [...serveFlags(dir), "serve", "--port", "0", "--data", dir, ...args],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    return { code: out.code, err: new TextDecoder().decode(out.stderr) };
  };
  try {
    // A port nobody listens on: pick one and release it.
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    const down = await run("--cluster", `nats://127.0.0.1:${port}`, "--node", "a");
    assertEquals(down.code, 1, down.err);
    assertStringIncludes(down.err, "cannot connect to NATS");
    const badNode = await run("--cluster", `nats://127.0.0.1:${port}`, "--node", "A.B");
    assertEquals(badNode.code, 2, badNode.err);
    assertStringIncludes(badNode.err, "cluster.node");
    const noNode = await run("--cluster", `nats://127.0.0.1:${port}`);
    assertEquals(noNode.code, 2, noNode.err);
    const help = await new Deno.Command(Deno.execPath(), {
      args: [...serveFlags(dir), "serve", "--help"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const helpText = new TextDecoder().decode(help.stdout) + new TextDecoder().decode(help.stderr);
    for (const flag of ["--cluster", "--node", "--nats-user", "--nats-creds", "--nats-ca"]) {
      assertStringIncludes(helpText, flag);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
