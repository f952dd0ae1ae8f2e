/** `cluster` config section and NATS connection options: no nats-server needed. */
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { join } from "@std/path";
import { loadConfig, parseClusterConfig } from "../../server/config.ts";
import {
  compareVersions,
  isNatsUnavailable,
  natsConnectionOptions,
  natsError,
} from "../../server/nats/connection.ts";
import { RequestError } from "../../server/errors.ts";
import { errors } from "@nats-io/transport-node";

Deno.test("cluster config: servers as a comma list or an array, node name checked", () => {
  assertEquals(
    parseClusterConfig({ servers: "nats://127.0.0.1:4222, nats://h2:4223", node: "a" }),
    { servers: ["nats://127.0.0.1:4222", "nats://h2:4223"], node: "a" },
  );
  assertEquals(
    parseClusterConfig({ servers: ["tls://h:4222"], node: "node_1", user: "u", password: "p" }),
    { servers: ["tls://h:4222"], node: "node_1", user: "u", password: "p" },
  );
  const bad = (raw: unknown, part: string) => {
    const e = assertThrows(() => parseClusterConfig(raw), TypeError);
    assert(e.message.includes(part), e.message);
    assert(e.message.startsWith('invalid "cluster" section'), e.message);
  };
  bad({ servers: "", node: "a" }, "cluster.servers");
  bad({ servers: "http://h:1", node: "a" }, "nats://HOST:PORT");
  bad({ servers: "nats://h", node: "a" }, "nats://HOST:PORT");
  bad({ servers: "nats://h:1", node: "A.b" }, "cluster.node");
  bad({ servers: "nats://h:1" }, "cluster.node");
  bad({ servers: "nats://h:1", node: "a", user: "u" }, "user and password go together");
  bad({ servers: "nats://h:1", node: "a", token: "t", creds: "/x" }, "one of");
  bad({ servers: "nats://h:1", node: "a", colour: "red" }, "cluster");
});

Deno.test("cluster config: absent unless given; flags override config.json key by key", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-cluster-cfg-" });
  try {
    assertEquals((await loadConfig({ dataDir: dir })).cluster, undefined);
    assertEquals(
      (await loadConfig({ dataDir: dir, cluster: { servers: undefined, node: undefined } }))
        .cluster,
      undefined,
    );
    await Deno.writeTextFile(
      join(dir, "config.json"),
      JSON.stringify({ cluster: { servers: ["nats://127.0.0.1:4222"], node: "a", token: "t" } }),
    );
    assertEquals((await loadConfig({ dataDir: dir })).cluster, {
      servers: ["nats://127.0.0.1:4222"],
      node: "a",
      token: "t",
    });
    assertEquals(
      (await loadConfig({ dataDir: dir, cluster: { node: "b", servers: undefined } })).cluster
        ?.node,
      "b",
    );
    await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify({ cluster: "nats://h:1" }));
    await assertRejects(() => loadConfig({ dataDir: dir }), TypeError, "must be an object");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("nats connection options: reconnect forever, fast pings, credentials, CA", async () => {
  const files = new Map([["/creds", new TextEncoder().encode(CREDS)], [
    "/ca.pem",
    new Uint8Array(1),
  ]]);
  const read = (p: string) => {
    const f = files.get(p);
    return f ? Promise.resolve(f) : Promise.reject(new Deno.errors.NotFound(p));
  };
  const o = await natsConnectionOptions(
    { servers: ["nats://127.0.0.1:1"], node: "a", user: "u", password: "p", ca: "/ca.pem" },
    read,
  );
  assertEquals(o.maxReconnectAttempts, -1);
  assertEquals(o.reconnectTimeWait, 250);
  assert(o.pingInterval! >= 5_000 && o.pingInterval! <= 10_000);
  assertEquals([o.user, o.pass, o.name], ["u", "p", "parley-a"]);
  assertEquals(o.tls, { caFile: "/ca.pem" });
  const c = await natsConnectionOptions(
    { servers: ["nats://127.0.0.1:1"], node: "a", creds: "/creds" },
    read,
  );
  assert(c.authenticator !== undefined && c.user === undefined);
  const t = await natsConnectionOptions({ servers: ["nats://h:1"], node: "a", token: "s" }, read);
  assertEquals(t.token, "s");
  assertEquals(t.tls, undefined);
  const tls = await natsConnectionOptions({ servers: ["tls://h:1"], node: "a" }, read);
  assertEquals(tls.tls, {});
  await assertRejects(() =>
    natsConnectionOptions({ servers: ["nats://h:1"], node: "a", ca: "/missing" }, read)
  );
});

Deno.test("nats version guard and error mapping", () => {
  assert(compareVersions("2.9.10", "2.9.0") > 0);
  assert(compareVersions("2.8.4", "2.9.0") < 0);
  assert(compareVersions("2.10.0", "2.9.10") > 0);
  assertEquals(compareVersions("v2.9.0-beta", "2.9.0"), 0);
  for (const e of [new errors.TimeoutError(), new errors.NoRespondersError("x")]) {
    assert(isNatsUnavailable(e));
    const mapped = natsError(e, "chat.send");
    assert(mapped instanceof RequestError && mapped.code === "unavailable");
  }
  const other = new Error("boom");
  assertEquals(natsError(other, "x"), other);
  const own = new RequestError("not_found", "nope");
  assertEquals(natsError(own, "x"), own);
});

// A creds file in the documented layout (placeholder JWT and seed, parsed only at connect time).
const CREDS = `-----BEGIN NATS USER JWT-----
eyJ0eXAiOiJqd3QiLCJhbGciOiJlZDI1NTE5In0.e30.e30
------END NATS USER JWT------

-----BEGIN USER NKEY SEED-----
SUAIBDPBAUTWCWBKIO6XHQNINK5FWJW4OHLXC3HQ2KFE4PEJUA44CNHTC4
------END USER NKEY SEED------
`;
