/**
 * The NATS accounts backend (`server/nats/accounts.ts`): the
 * {@linkcode Accounts} contract against one real nats-server with
 * JetStream, each store a bucket of its own; `peerOf` opens a second
 * instance, on a connection of its own, on the same bucket (another node's
 * view of it). Skipped when nats-server is not installed.
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { Accounts } from "../../server/backend/accounts.ts";
import { openNatsAccounts } from "../../server/nats/accounts.ts";
import { encodeKeyToken, openRecordBucket } from "../../server/nats/kv_watch.ts";
import { Logger } from "../../server/log.ts";
import { verifierOf } from "../../protocol/auth.ts";
import { decodeHex } from "@std/encoding/hex";
import { jetstream } from "@nats-io/jetstream";
import { natsAvailable, type NatsCluster, startNatsServer } from "../cluster/nats_fixture.ts";
import { runAccountsContract } from "./accounts_contract.ts";

const available = natsAvailable();

/** One nats-server for the whole file, started by the first test that needs it. */
class _Server {
  #server: Promise<NatsCluster> | undefined;
  #users = 0;
  #n = 0;

  async acquire(): Promise<NatsCluster> {
    this.#users++;
    this.#server ??= startNatsServer();
    return await this.#server;
  }

  /** Stops the server once no test holds it (tests of one file run one after another). */
  async release(): Promise<void> {
    if (--this.#users > 0 || !this.#server) return;
    const s = this.#server;
    this.#server = undefined;
    await (await s).close();
  }

  bucket(): string {
    return `users_${++this.#n}`;
  }
}

const server = new _Server();
const buckets = new WeakMap<Accounts, string>();

if (available) {
  runAccountsContract("nats", async (_t, peerOf) => {
    const bucket = peerOf ? buckets.get(peerOf) : server.bucket();
    if (bucket === undefined) throw new Error("peerOf was not opened by this factory");
    const cluster = await server.acquire();
    let nc: NatsConnection | undefined;
    try {
      nc = await connect({ servers: cluster.urls });
      const accounts = await openNatsAccounts(nc, { node: peerOf ? "n2" : "n1", bucket });
      const conn = nc;
      const out: Accounts & AsyncDisposable = {
        get: (n) => accounts.get(n),
        peek: (n) => accounts.peek(n),
        list: () => accounts.list(),
        add: (n, r) => accounts.add(n, r),
        setRights: (n, r) => accounts.setRights(n, r),
        rotate: (n) => accounts.rotate(n),
        remove: (n) => accounts.remove(n),
        verifierFor: (n) => accounts.verifierFor(n),
        subscribe: (l) => accounts.subscribe(l),
        async [Symbol.asyncDispose]() {
          await accounts.close();
          await conn.close();
          await server.release();
        },
      };
      buckets.set(out, bucket);
      return out;
    } catch (e) {
      await nc?.close();
      await server.release();
      throw e;
    }
  });
}

Deno.test({
  name: "nats accounts: a name with a dot is one key, and the record holds no dot-split token",
  ignore: !available,
}, async () => {
  const cluster = await server.acquire();
  const nc = await connect({ servers: cluster.urls });
  try {
    const bucket = server.bucket();
    await using accounts = await openNatsAccounts(nc, { node: "n1", bucket });
    await accounts.add("a.b", { exec: true });
    await accounts.add("a", {});
    assertEquals((await accounts.list()).map((a) => a.name), ["a", "a.b"]);
    assertEquals(accounts.peek("a.b")?.exec, true);
    await accounts.remove("a.b");
    assertEquals(accounts.peek("a.b"), undefined);
    assertEquals(accounts.peek("a")?.name, "a");
  } finally {
    await nc.close();
    await server.release();
  }
});

Deno.test({
  name: "nats accounts: a record from before verifiers (the key itself) is rewritten when opened",
  ignore: !available,
}, async () => {
  const cluster = await server.acquire();
  const nc = await connect({ servers: cluster.urls });
  try {
    const bucket = server.bucket();
    const kv = await openRecordBucket(jetstream(nc), bucket, 1);
    const key = "cd".repeat(32);
    const legacy = {
      name: "ada",
      key,
      admin: false,
      exec: true,
      created: new Date().toISOString(),
    };
    await kv.put(encodeKeyToken("ada"), JSON.stringify(legacy));
    const lines: string[] = [];
    const log = new Logger({ level: "info", sink: (l) => lines.push(l) });
    await using accounts = await openNatsAccounts(nc, { node: "n1", bucket, log });
    assertEquals(lines.filter((l) => l.includes("verifiers")).length, 1, lines.join("\n"));
    const stored = (await kv.get(encodeKeyToken("ada")))?.string() ?? "";
    assertEquals(stored.includes(key), false, `the key is still stored: ${stored}`);
    const login = await accounts.verifierFor("ada");
    assertEquals(login?.verifier.storedKey, verifierOf(decodeHex(key)).storedKey);
    assertEquals(login?.account.exec, true);
  } finally {
    await nc.close();
    await server.release();
  }
});
