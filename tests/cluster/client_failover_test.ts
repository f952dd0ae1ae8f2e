/**
 * A client given several nodes (`PARLEY_SERVER=parley://ada@a:7878,b:7878`) connects to the first
 * that answers and fails over to the next when its node goes away. No NATS needed: two embedded
 * servers that share one accounts file (copied) stand in for two nodes.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { join } from "@std/path";
import { ParleyClient } from "../../client/client.ts";
import { CredentialError, parseServerList } from "../../client/credentials.ts";
import { RemoteError } from "../../protocol/errors.ts";
import { keyBytes, startTestServer } from "../helpers.ts";

Deno.test("server list: comma-separated addresses, one user, one scheme", () => {
  assertEquals(parseServerList("parley://ada@a:7000,b:7001"), {
    user: "ada",
    servers: [{ host: "a", port: 7000 }, { host: "b", port: 7001 }],
    tls: true,
  });
  assertEquals(parseServerList("parleys://a, parleys://ada@b").tls, true);
  assertEquals(parseServerList("parley+plain://a,b").tls, false);
  assertEquals(parseServerList("h").servers, [{ host: "h", port: 7878 }]);
  assertThrows(() => parseServerList("parley://ada@a,parley://bob@b"), CredentialError, "users");
  assertThrows(() => parseServerList("parley://a,parley+plain://b"), CredentialError, "mixes");
  assertThrows(() => parseServerList(" , "), CredentialError);
});

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isFile) await Deno.copyFile(join(from, e.name), join(to, e.name));
    else if (e.isDirectory) await copyDir(join(from, e.name), join(to, e.name));
  }
}

Deno.test("client failover: skips a dead node, moves to the next when its node closes", async () => {
  await using a = await startTestServer();
  const key = await a.addUser("ada");
  const dirB = await Deno.makeTempDir({ prefix: "parley-failover-b-" });
  await copyDir(a.dataDir, dirB);
  const b = await startTestServer({ dataDir: dirB });
  try {
    const dead = freePort();
    const client = await ParleyClient.connect({
      host: "127.0.0.1",
      port: dead,
      servers: [
        { host: "127.0.0.1", port: dead },
        { host: "127.0.0.1", port: a.port },
        { host: "127.0.0.1", port: b.port },
      ],
      user: "ada",
      key: keyBytes(key),
      tls: false,
      reconnect: true,
      backoffMs: 20,
    });
    try {
      assertEquals(client.server.port, a.port);
      const reopened = new Promise<void>((resolve) => {
        const off = client.onState((s) => {
          if (s === "open") {
            off();
            resolve();
          }
        });
      });
      const t0 = performance.now();
      await a.server.close();
      await reopened;
      const ms = performance.now() - t0;
      assertEquals(client.server.port, b.port);
      await client.call("chat.rooms", {});
      assert(ms < 5_000, `failover took ${ms} ms`);
    } finally {
      await client.close();
    }
  } finally {
    await b[Symbol.asyncDispose]();
    await Deno.remove(dirB, { recursive: true }).catch(() => {});
  }
});

Deno.test("client failover: a refused login is final, not retried on the next node", async () => {
  await using a = await startTestServer();
  await a.addUser("ada");
  await using b = await startTestServer();
  const key = await b.addUser("ada"); // a different key: a refuses it
  await assertRejects(
    () =>
      ParleyClient.connect({
        host: "127.0.0.1",
        port: a.port,
        servers: [{ host: "127.0.0.1", port: a.port }, { host: "127.0.0.1", port: b.port }],
        user: "ada",
        key: keyBytes(key),
        tls: false,
      }),
    RemoteError,
  );
});
