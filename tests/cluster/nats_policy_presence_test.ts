/**
 * Chat policy and presence on NATS (`server/nats/chat_policy.ts`,
 * `server/nats/chat_presence.ts`) across nodes: each "node" is its own NATS
 * connection to a real nats-server with JetStream (fixture), so what one
 * writes reaches the others only through the buckets. Skipped when
 * nats-server is not installed.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { PolicyChange } from "../../server/backend/chat.ts";
import { openNatsChatPolicy } from "../../server/nats/chat_policy.ts";
import { type NatsPresence, openNatsPresence } from "../../server/nats/chat_presence.ts";
import { jetstreamManager } from "@nats-io/jetstream";
import { openNatsAccounts } from "../../server/nats/accounts.ts";
import {
  natsAvailable,
  type NatsCluster,
  startNatsCluster,
  startNatsServer,
} from "./nats_fixture.ts";

const available = natsAvailable();

/** Deadline for something that should happen at once (a loaded machine's margin). */
const _DEADLINE_MS = 10_000;
/** The presence TTL used here (production: 30 s). */
const _TTL_MS = 3000;
const _GRACE_MS = 1500;

async function _eventually(ok: () => boolean, what: string, ms = _DEADLINE_MS): Promise<void> {
  for (let i = 0; i < ms / 10 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  assert(ok(), `timed out waiting for ${what}`);
}

/** A nats-server and the node connections a test opened on it, all closed on dispose. */
async function _nats(): Promise<
  AsyncDisposable & { server: NatsCluster; node(): Promise<NatsConnection> }
> {
  const server = await startNatsServer();
  const conns: NatsConnection[] = [];
  return {
    server,
    async node() {
      const nc = await connect({ servers: server.urls });
      conns.push(nc);
      return nc;
    },
    async [Symbol.asyncDispose]() {
      await Promise.allSettled(conns.map((nc) => nc.close()));
      await server.close();
    },
  };
}

function _presence(nc: NatsConnection, node: string): Promise<NatsPresence> {
  return openNatsPresence(nc, { node, ttlMs: _TTL_MS, graceMs: _GRACE_MS });
}

Deno.test({
  name: "nats chat policy: a ban set on node 1 reaches node 2's subscribers and reads",
  ignore: !available,
}, async () => {
  await using nats = await _nats();
  await using p1 = await openNatsChatPolicy(await nats.node(), { node: "n1" });
  await using p2 = await openNatsChatPolicy(await nats.node(), { node: "n2" });
  const seen: PolicyChange[] = [];
  const stop = p2.subscribe((c) => seen.push(c));
  try {
    const t0 = performance.now();
    await p1.setBan("mal.lory", { by: "admin", reason: "spam" });
    await _eventually(() => seen.length > 0, "the ban on node 2");
    const ms = performance.now() - t0;
    console.log(`ban set on node 1 seen by node 2's subscriber after ${ms.toFixed(1)} ms`);
    assertEquals(seen, [{ kind: "ban", user: "mal.lory", ban: { by: "admin", reason: "spam" } }]);
    assertEquals([p2.ban("mal.lory"), p2.bans()], [{ by: "admin", reason: "spam" }, ["mal.lory"]]);
    await p2.setBan("mal.lory", undefined);
    await _eventually(() => p1.ban("mal.lory") === undefined, "the unban on node 1");
    assertEquals(seen.at(-1), { kind: "ban", user: "mal.lory", ban: undefined });
    await p1.setMute("bob", { by: "admin", until: Date.now() + 60_000 });
    await p1.setIgnore("ada", "bob", true);
    await _eventually(() => p2.ignoring("ada", "bob"), "the ignore on node 2");
    assert((p2.mutedUntil("bob") ?? 0) > Date.now(), "the mute did not reach node 2");
    assertEquals(seen.map((c) => c.kind), ["ban", "ban", "mute", "ignore"]);
  } finally {
    stop();
  }
});

Deno.test({
  name: "nats chat policy: state survives a reopen, and a refused or repeated change tells nobody",
  ignore: !available,
}, async () => {
  await using nats = await _nats();
  const nc = await nats.node();
  {
    await using p = await openNatsChatPolicy(nc, { node: "n1" });
    const changes: PolicyChange[] = [];
    const stop = p.subscribe((c) => changes.push(c));
    await p.setBan("mallory", { by: "admin" });
    await p.setIgnore("ada", "bob", true);
    await p.setIgnore("ada", "bob", true);
    p.markDelivered("ada", 7);
    p.markDelivered("ada", 3);
    stop();
    assertEquals(changes.map((c) => [c.kind, "user" in c ? c.user : c.room]), [
      ["ban", "mallory"],
      ["ignore", "ada"],
      ["delivered", "ada"],
    ]);
  }
  await using p = await openNatsChatPolicy(nc, { node: "n1" });
  assertEquals([p.bans(), p.ignores("ada"), p.delivered("ada")], [["mallory"], ["bob"], 7]);
  await p.setIgnore("ada", "bob", false);
  assertEquals(p.ignores("ada"), []);
});

Deno.test({
  name: "nats chat policy: delivery marks never go down under concurrent raises from two nodes",
  ignore: !available,
}, async () => {
  await using nats = await _nats();
  await using p1 = await openNatsChatPolicy(await nats.node(), { node: "n1" });
  await using p2 = await openNatsChatPolicy(await nats.node(), { node: "n2" });
  const last = [0, 0];
  const wentDown: string[] = [];
  const watch = [p1, p2].map((p, i) =>
    p.subscribe((c) => {
      if (c.kind !== "delivered") return;
      if (c.id < last[i]!) wentDown.push(`node ${i + 1}: ${c.id} after ${last[i]}`);
      last[i] = c.id;
    })
  );
  try {
    // Node 1 raises to the odd ids, node 2 to the even ones, interleaved.
    for (let id = 1; id <= 200; id += 2) {
      p1.markDelivered("ada", id);
      p2.markDelivered("ada", id + 1);
      if (id % 20 === 1) await new Promise((r) => setTimeout(r, 5));
      for (const [i, p] of [p1, p2].entries()) {
        const now = p.delivered("ada");
        if (now < last[i]!) wentDown.push(`node ${i + 1} read ${now} after ${last[i]}`);
      }
    }
    await _eventually(
      () => p1.delivered("ada") === 200 && p2.delivered("ada") === 200,
      "both nodes at 200",
    );
    assertEquals(wentDown, []);
    // The stored mark is the highest: a third node opening now reads it.
    await using p3 = await openNatsChatPolicy(await nats.node(), { node: "n3" });
    assertEquals(p3.delivered("ada"), 200);
    p3.markDelivered("ada", 150);
    assertEquals(p3.delivered("ada"), 200);
  } finally {
    for (const stop of watch) stop();
  }
});

Deno.test({
  name: "nats presence: local changes are read at once, merged with other nodes' users",
  ignore: !available,
}, async () => {
  await using nats = await _nats();
  await using a = await _presence(await nats.node(), "a");
  await using b = await _presence(await nats.node(), "b.2");
  const told: string[] = [];
  const stop = a.subscribe((u) => told.push(u));
  try {
    a.set({ user: "ada", rooms: ["lobby"], connections: 1, lastActivity: 1000 });
    assertEquals(a.usersIn("lobby"), ["ada"], "a local set is read before it returns");
    const t0 = performance.now();
    b.set({ user: "bob", rooms: ["lobby", "dev"], connections: 2, lastActivity: 2000 });
    b.set({ user: "ada", rooms: ["dev"], connections: 1, lastActivity: 3000 });
    await _eventually(() => a.usersIn("dev").length === 2, "node b's users on node a");
    console.log(
      `presence from node b seen on node a after ${(performance.now() - t0).toFixed(0)} ms`,
    );
    assertEquals(a.online(), [
      { name: "ada", rooms: ["dev", "lobby"], connections: 2, lastActivity: 3000 },
      { name: "bob", rooms: ["dev", "lobby"], connections: 2, lastActivity: 2000 },
    ]);
    assertEquals([a.isIn("bob", "dev"), a.isIn("bob", "ops")], [true, false]);
    assertEquals(a.rooms().sort(), ["dev", "lobby"]);
    assertEquals(a.nodes().map((n) => n.node), ["a", "b.2"]);
    assertEquals(told.toSorted(), ["ada", "ada", "bob"]);
    // Leaving a room while connected is no failover: it shows at once.
    b.set({ user: "bob", rooms: ["dev"], connections: 2, lastActivity: 4000 });
    await _eventually(() => a.usersIn("lobby").join() === "ada", "bob leaving the lobby");
  } finally {
    stop();
  }
});

Deno.test({
  name: "nats presence: a node that dies without a clean close leaves online() within TTL + sweep",
  ignore: !available,
}, async () => {
  await using nats = await _nats();
  await using a = await _presence(await nats.node(), "a");
  const doomed = await nats.node();
  const b = await _presence(doomed, "b");
  b.set({ user: "bob", rooms: ["lobby"], connections: 1, lastActivity: 1 });
  await _eventually(() => a.isIn("bob", "lobby"), "bob on node a");
  // The node dies: its connection goes, nothing deletes its record.
  await doomed.close();
  const t0 = performance.now();
  await b.close();
  await _eventually(() => a.online().length === 0, "bob leaving", _TTL_MS * 3);
  const ms = performance.now() - t0;
  console.log(
    `a dead node's users left online() ${ms.toFixed(0)} ms after it stopped (TTL ${_TTL_MS} ms)`,
  );
  assert(ms <= _TTL_MS + _TTL_MS / 6 + 1000, `took ${ms} ms`);
  assert(ms >= _TTL_MS / 3, `gone after ${ms} ms: sooner than any refresh could be missed`);
  assertEquals(a.nodes().map((n) => n.node), ["a"]);
});

Deno.test({
  name:
    "nats presence: a user who moves to another node within the grace neither leaves nor rejoins",
  ignore: !available,
}, async () => {
  await using nats = await _nats();
  await using watcher = await _presence(await nats.node(), "w");
  await using c = await _presence(await nats.node(), "c");
  const b = await _presence(await nats.node(), "b");
  b.set({ user: "ada", rooms: ["lobby"], connections: 1, lastActivity: 1 });
  b.set({ user: "bob", rooms: ["lobby"], connections: 1, lastActivity: 1 });
  await _eventually(() => watcher.usersIn("lobby").length === 2, "ada and bob on the watcher");
  const told: string[] = [];
  const stop = watcher.subscribe((u) => told.push(u));
  const gaps: string[] = [];
  try {
    // Node b shuts down cleanly; ada's client reconnects to node c 300 ms later, bob's never.
    const t0 = performance.now();
    await b.close();
    const poll = setInterval(() => {
      if (!watcher.isIn("ada", "lobby")) gaps.push(`${(performance.now() - t0).toFixed(0)} ms`);
    }, 10);
    try {
      await new Promise((r) => setTimeout(r, 300));
      c.set({ user: "ada", rooms: ["lobby"], connections: 1, lastActivity: 2 });
      await _eventually(() => !watcher.isIn("bob", "lobby"), "bob leaving after the grace");
      const left = performance.now() - t0;
      console.log(
        `bob (no failover) left ${
          left.toFixed(0)
        } ms after his node closed (grace ${_GRACE_MS} ms)`,
      );
      assert(left >= _GRACE_MS - 50, `bob left after ${left} ms, before the grace ended`);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      clearInterval(poll);
    }
    assertEquals(gaps, [], "ada was out of the lobby for a moment");
    assertEquals(told, ["bob"], "only bob's departure is news");
    assertEquals(watcher.online().map((u) => [u.name, u.connections]), [["ada", 1]]);
  } finally {
    stop();
    await b.close();
  }
});

Deno.test({
  name:
    "nats policy, accounts and presence on a 3-server cluster: R3 buckets, nodes on different servers",
  ignore: !available,
}, async () => {
  await using cluster = await startNatsCluster();
  const conns: NatsConnection[] = await Promise.all(
    cluster.urls.map((url) => connect({ servers: url })),
  );
  try {
    const [nc1, , nc3] = conns as [NatsConnection, NatsConnection, NatsConnection];
    await using p1 = await openNatsChatPolicy(nc1, { node: "n1", replicas: 3 });
    await using p3 = await openNatsChatPolicy(nc3, { node: "n3", replicas: 3 });
    await using a1 = await openNatsAccounts(nc1, { node: "n1", replicas: 3 });
    await using a3 = await openNatsAccounts(nc3, { node: "n3", replicas: 3 });
    await using r1 = await openNatsPresence(nc1, { node: "n1", replicas: 3, ttlMs: _TTL_MS });
    await using r3 = await openNatsPresence(nc3, { node: "n3", replicas: 3, ttlMs: _TTL_MS });
    const jsm = await jetstreamManager(nc1);
    for (const stream of ["KV_parley_chat", "KV_parley_users", "KV_parley_presence"]) {
      assertEquals((await jsm.streams.info(stream)).config.num_replicas, 3, stream);
    }
    const seen: PolicyChange[] = [];
    const stop = p3.subscribe((c) => seen.push(c));
    try {
      const t0 = performance.now();
      await p1.setBan("mallory", { by: "admin" });
      await _eventually(() => seen.length > 0, "the ban through server 3");
      console.log(
        `R3: ban seen by a node on another server after ${(performance.now() - t0).toFixed(1)} ms`,
      );
    } finally {
      stop();
    }
    await a1.add("ada");
    assertEquals((await a3.get("ada"))?.name, "ada", "get through another server");
    await _eventually(() => a3.peek("ada") !== undefined, "the account on node 3");
    r1.set({ user: "ada", rooms: ["lobby"], connections: 1, lastActivity: 1 });
    await _eventually(() => r3.isIn("ada", "lobby"), "ada's presence on node 3");
  } finally {
    await Promise.allSettled(conns.map((nc) => nc.close()));
  }
});

Deno.test({
  name: "nats chat policy: a node's watch resumes after its nats-server restarts",
  ignore: !available,
}, async () => {
  await using nats = await _nats();
  const opts = { maxReconnectAttempts: -1, reconnectTimeWait: 250 };
  const nc1 = await connect({ servers: nats.server.urls, ...opts });
  const nc2 = await connect({ servers: nats.server.urls, ...opts });
  try {
    await using p1 = await openNatsChatPolicy(nc1, { node: "n1" });
    await using p2 = await openNatsChatPolicy(nc2, { node: "n2" });
    await p1.setBan("before", { by: "admin" });
    await _eventually(() => p2.ban("before") !== undefined, "the first ban on node 2");
    await nats.server.servers[0]!.restart();
    const t0 = performance.now();
    // Writes are refused until the client has reconnected: retry, bounded.
    for (let i = 0; i < 200; i++) {
      try {
        await p1.setBan("after", { by: "admin" });
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const stored = performance.now() - t0;
    await _eventually(() => p2.ban("after") !== undefined, "a ban after the restart", 30_000);
    const seen = performance.now() - t0;
    console.log(
      `server restart: a ban stored after ${stored.toFixed(0)} ms, on node 2 after ${
        seen.toFixed(0)
      } ms`,
    );
    assertEquals(p2.bans(), ["after", "before"]);
  } finally {
    await nc1.close();
    await nc2.close();
  }
});
