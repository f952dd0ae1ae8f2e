/**
 * The NATS files backend across nodes: two backends ("nodes") on one 3-server
 * cluster with R3, each connected to a different server: a file put through
 * one is read byte-exact through the other, an upload interrupted on one
 * (closed, or its node gone) resumes on the other, and one quota holds across
 * both. Plus, on one server: the GC sweep, the periodic sweeper under its
 * lease and the per-user upload count. Skipped when nats-server is missing.
 */
import { assert, assertEquals } from "@std/assert";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { HashGate, UploadTarget } from "../../server/backend/files.ts";
import { type NatsFiles, openNatsFiles } from "../../server/nats/files.ts";
import {
  bytesOf,
  collect,
  rejectsWith,
  ROOMY,
  sha256Hex,
  upload,
} from "../backend/files_contract.ts";
import { connectTo } from "../backend/files_nats_fixture.ts";
import {
  natsAvailable,
  type NatsCluster,
  startNatsCluster,
  startNatsServer,
} from "./nats_fixture.ts";

const available = natsAvailable();
const direct: HashGate = (work) => work();

interface Node extends AsyncDisposable {
  nc: NatsConnection;
  files: NatsFiles;
}

async function node(
  url: string,
  name: string,
  replicas: number,
  leaseMs?: number,
  sweepEveryMs = 0,
): Promise<Node> {
  const nc = await connectTo([url]);
  const files = await openNatsFiles(nc, {
    node: name,
    replicas,
    sweepEveryMs,
    ...(leaseMs ? { leaseMs } : {}),
  });
  return {
    nc,
    files,
    async [Symbol.asyncDispose]() {
      await files.close();
      if (!nc.isClosed()) await nc.close();
    },
  };
}

/** A 3-server cluster and two nodes on different servers. */
async function twoNodes(leaseMs?: number): Promise<[NatsCluster, Node, Node]> {
  const cluster = await startNatsCluster();
  const a = await node(cluster.servers[0]!.url, "a", 3, leaseMs);
  const b = await node(cluster.servers[1]!.url, "b", 3, leaseMs);
  return [cluster, a, b];
}

function target(size: number, tag: string): UploadTarget {
  return { user: "ada", parts: ["big.bin"], size, id: { tag }, overwrite: false, parents: false };
}

Deno.test({
  name: "nats files: put through one node, read byte-exact through another (R3)",
  ignore: !available,
  async fn() {
    const [cluster, a, b] = await twoNodes();
    await using _c = cluster;
    await using _a = a;
    await using _b = b;
    const data = bytesOf(3 * 1024 * 1024 + 12_345, 7);
    await upload(a.files.store, "ada", ["big.bin"], data);
    await using r = await b.files.store.open("ada", ["big.bin"]);
    assertEquals(await sha256Hex(await collect(r.read())), await sha256Hex(data));
    assertEquals(await collect(r.read(1_000_000, 1_600_000)), data.subarray(1_000_000, 1_600_000));
    assertEquals((await b.files.store.usage("ada")).files, data.byteLength);
  },
});

Deno.test({
  name: "nats files: an upload interrupted on one node resumes on another from its offset",
  ignore: !available,
  async fn() {
    const [cluster, a, b] = await twoNodes(800);
    await using _c = cluster;
    await using _a = a;
    await using _b = b;
    const data = bytesOf(2 * 1024 * 1024 + 99, 5);
    const sha256 = await sha256Hex(data);
    // A client drops: the session closes, the bytes stay.
    const t1 = target(data.byteLength, "closed");
    {
      await using up = await a.files.store.beginUpload(t1, {
        offset: 0,
        limits: ROOMY,
        hashGate: direct,
      });
      await up.write(data.subarray(0, 700_000));
    }
    assertEquals(await b.files.store.uploadOffset(t1, ROOMY), { offset: 700_000, busy: false });
    {
      await using up = await b.files.store.beginUpload(t1, {
        offset: 700_000,
        limits: ROOMY,
        hashGate: direct,
      });
      await up.write(data.subarray(700_000));
      await up.finish(sha256);
    }
    await using r = await a.files.store.open("ada", ["big.bin"]);
    assertEquals(await sha256Hex(await collect(r.read())), sha256);
    // A node dies mid-upload: its lease expires, another node resumes from the full chunks it stored.
    const t2 = { ...target(data.byteLength, "dead"), parts: ["other.bin"] };
    const up = await a.files.store.beginUpload(t2, { offset: 0, limits: ROOMY, hashGate: direct });
    await up.write(data.subarray(0, 1_200_000));
    await a.nc.close();
    assertEquals((await b.files.store.uploadOffset(t2, ROOMY)).busy, true);
    await new Promise((r) => setTimeout(r, 900));
    const { offset, busy } = await b.files.store.uploadOffset(t2, ROOMY);
    assertEquals([offset, busy], [1024 * 1024, false]);
    {
      await using up2 = await b.files.store.beginUpload(t2, {
        offset,
        limits: ROOMY,
        hashGate: direct,
      });
      await up2.write(data.subarray(offset));
      await up2.finish(sha256);
    }
    assertEquals(await b.files.store.usage("ada"), {
      files: 2 * data.byteLength,
      partial: 0,
      reserved: 0,
      entries: 2,
    });
  },
});

Deno.test({
  name: "nats files: one quota holds across nodes",
  ignore: !available,
  async fn() {
    const [cluster, a, b] = await twoNodes();
    await using _c = cluster;
    await using _a = a;
    await using _b = b;
    const limits = { ...ROOMY, quotaBytes: 1000 };
    const t = (i: number) => ({ ...target(600, `q${i}`), parts: [`q${i}`] });
    const begun = await Promise.allSettled([
      a.files.store.beginUpload(t(1), { offset: 0, limits, hashGate: direct }),
      b.files.store.beginUpload(t(2), { offset: 0, limits, hashGate: direct }),
    ]);
    const ok = begun.filter((x) => x.status === "fulfilled");
    assertEquals(ok.length, 1);
    for (const x of ok) {
      await (x as PromiseFulfilledResult<{ close(): Promise<void> }>).value.close();
    }
    await upload(a.files.store, "ada", ["kept"], bytesOf(600), { limits });
    await rejectsWith(
      "quota",
      () => upload(b.files.store, "ada", ["more"], bytesOf(600, 2), { limits }),
    );
    await b.files.store.remove("ada", ["kept"]);
    // The upload that began holds nothing once closed: it wrote no byte.
    const u = await a.files.store.usage("ada");
    assertEquals([u.files, u.reserved, u.entries], [0, 0, 0]);
    await upload(a.files.store, "ada", ["more"], bytesOf(300, 2), { limits });
  },
});

Deno.test({
  name: "nats files: a sweep purges unreferenced chunk sets after a grace, and stale uploads",
  ignore: !available,
  async fn() {
    await using server = await startNatsServer();
    await using n = await node(server.urls[0]!, "n1", 1);
    const { store } = n.files;
    await upload(store, "ada", ["f"], bytesOf(100_000, 1));
    await upload(store, "ada", ["f"], bytesOf(50_000, 2), { overwrite: true });
    {
      await using up = await store.beginUpload(target(10_000, "p"), {
        offset: 0,
        limits: ROOMY,
        hashGate: direct,
      });
      await up.write(bytesOf(4000));
    }
    assertEquals((await store.usage("ada")).partial, 4000);
    const first = await n.files.sweep({ graceMs: 0 });
    assertEquals([first.marked, first.purged, first.expired], [1, 0, 0]);
    const second = await n.files.sweep({ graceMs: 0 });
    assertEquals([second.marked, second.purged, second.expired], [0, 1, 0]);
    await using r = await store.open("ada", ["f"]);
    assertEquals(await collect(r.read()), bytesOf(50_000, 2));
    const later = Date.now() + 48 * 3_600_000;
    const third = await n.files.sweep({ graceMs: 0, now: later });
    assertEquals(third.expired, 1);
    await n.files.sweep({ graceMs: 0, now: later });
    assertEquals(await store.uploadOffset(target(10_000, "p"), ROOMY), { offset: 0, busy: false });
    assertEquals(await store.usage("ada"), { files: 50_000, partial: 0, reserved: 0, entries: 1 });
  },
});

Deno.test({
  name: "nats files: at most maxPartials uploads per user, the oldest interrupted dropped first",
  ignore: !available,
  async fn() {
    await using server = await startNatsServer();
    await using n = await node(server.urls[0]!, "n1", 1);
    const { store } = n.files;
    const limits = { ...ROOMY, maxPartials: 2 };
    const t = (i: number) => ({ ...target(10_000, `m${i}`), parts: [`m${i}`] });
    for (const i of [1, 2]) {
      await using up = await store.beginUpload(t(i), { offset: 0, limits, hashGate: direct });
      await up.write(bytesOf(1000 * i));
    }
    assertEquals((await store.usage("ada")).partial, 3000);
    await using third = await store.beginUpload(t(3), { offset: 0, limits, hashGate: direct });
    assertEquals((await store.usage("ada")).partial, 2000);
    assertEquals((await store.uploadOffset(t(1), limits)).offset, 0);
    assertEquals((await store.uploadOffset(t(2), limits)).offset, 2000);
    await using _second = await store.beginUpload(t(2), {
      offset: 2000,
      limits,
      hashGate: direct,
    });
    await rejectsWith(
      "busy",
      () => store.beginUpload(t(4), { offset: 0, limits, hashGate: direct }),
    );
    await third.close();
  },
});

Deno.test({
  name: "nats files: one node at a time sweeps periodically, under the sweep lease",
  ignore: !available,
  async fn() {
    await using server = await startNatsServer();
    await using a = await node(server.urls[0]!, "a", 1, undefined, 50);
    await using b = await node(server.urls[0]!, "b", 1, undefined, 50);
    await upload(a.files.store, "ada", ["f"], bytesOf(1000, 1));
    await upload(b.files.store, "ada", ["f"], bytesOf(1000, 2), { overwrite: true });
    const kv = await new Kvm(a.nc).open("parley_fs");
    let marks: string[] = [];
    for (let i = 0; i < 100 && marks.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      marks = [];
      for await (const k of await kv.keys("gc.*")) marks.push(k);
    }
    assertEquals(marks.length, 1);
    const holder = (await kv.get("lease.gc"))?.json<{ node: string }>().node;
    assert(holder === "a" || holder === "b", String(holder));
  },
});

Deno.test({
  name:
    "nats files: a sweep settles the upload of a dead node: reservation off, stored bytes partial",
  ignore: !available,
  async fn() {
    await using server = await startNatsServer();
    await using a = await node(server.urls[0]!, "a", 1, 200);
    await using b = await node(server.urls[0]!, "b", 1, 200);
    const t = target(2 * 1024 * 1024, "dead");
    const up = await a.files.store.beginUpload(t, { offset: 0, limits: ROOMY, hashGate: direct });
    await up.write(bytesOf(600 * 1024));
    await a.nc.close();
    assertEquals((await b.files.store.usage("ada")).reserved, t.size);
    await new Promise((r) => setTimeout(r, 300));
    assertEquals((await b.files.sweep()).settled, 1);
    assertEquals(await b.files.store.usage("ada"), {
      files: 0,
      partial: 512 * 1024,
      reserved: 0,
      entries: 0,
    });
  },
});

Deno.test({
  name: "nats files: moving a directory checks the depth of its whole tree at the new place",
  ignore: !available,
  async fn() {
    await using server = await startNatsServer();
    await using n = await node(server.urls[0]!, "n1", 1);
    const { store } = n.files;
    const deep = Array.from({ length: 62 }, (_, i) => `d${i}`);
    await store.mkdir("ada", deep, { parents: true, limits: ROOMY });
    await store.mkdir("ada", ["a", "b", "c"], { parents: true, limits: ROOMY });
    await rejectsWith("bad_request", () => store.rename("ada", ["a"], deep, { overwrite: false }));
    await store.rmdir("ada", ["a", "b", "c"]);
    assertEquals(await store.rename("ada", ["a"], deep, { overwrite: false }), [...deep, "a"]);
    assertEquals((await store.stat("ada", [...deep, "a", "b"]))?.type, "dir");
    assertEquals((await store.usage("ada")).entries, 64);
  },
});
