/**
 * The NATS files backend on one server: the GC sweep, the periodic sweeper
 * under its lease, dead sessions settled, the per-user upload count,
 * directory moves checked over the whole tree, one stored copy per content
 * and usage log compaction. Skipped when nats-server is
 * missing.
 */
import { assert, assertEquals } from "@std/assert";
import { Kvm } from "@nats-io/kv";
import { jetstreamManager } from "@nats-io/jetstream";
import {
  bytesOf,
  collect,
  rejectsWith,
  ROOMY,
  sha256Hex,
  upload,
} from "../backend/files_contract.ts";
import { direct, type Node, node, target } from "./nats_files_fixture.ts";
import { natsAvailable, startNatsServer } from "./nats_fixture.ts";

const available = natsAvailable();

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

/** Chunk sets stored now (distinct `parley.up.<gen>` prefixes) and the content records. */
async function stored(n: Node): Promise<{ gens: number; contents: string[] }> {
  const jsm = await jetstreamManager(n.nc);
  const si = await jsm.streams.info("PARLEY_FS_CHUNKS", { subjects_filter: "parley.up.>" });
  const gens = new Set(Object.keys(si.state.subjects ?? {}).map((s) => s.split(".")[2]));
  const kv = await new Kvm(n.nc).open("parley_fs");
  const contents: string[] = [];
  for await (const k of await kv.keys("c.*")) contents.push(k);
  return { gens: gens.size, contents };
}

Deno.test({
  name: "nats files: one stored copy per content, kept while any path names it, then swept",
  ignore: !available,
  async fn() {
    await using server = await startNatsServer();
    await using n = await node(server.urls[0]!, "n1", 1);
    const { store } = n.files;
    const data = bytesOf(1_300_000, 21);
    const sha = await sha256Hex(data);
    await upload(store, "ada", ["x"], data);
    await upload(store, "ada", ["y"], data);
    await upload(store, "bob", ["z"], data);
    assertEquals(await stored(n), { gens: 1, contents: [`c.${sha}`] });
    assertEquals((await store.usage("ada")).files, 2 * data.byteLength);
    await store.remove("ada", ["x"]);
    await store.remove("ada", ["y"]);
    for (let i = 0; i < 2; i++) assertEquals((await n.files.sweep({ graceMs: 0 })).purged, 0);
    assertEquals(await collect((await store.open("bob", ["z"])).read()), data);
    await store.remove("bob", ["z"]);
    assertEquals((await n.files.sweep({ graceMs: 0 })).marked, 1);
    assertEquals((await n.files.sweep({ graceMs: 0 })).purged, 1);
    assertEquals(await stored(n), { gens: 0, contents: [] });
    // Stored again from nothing.
    await upload(store, "ada", ["x"], data);
    assertEquals(await collect((await store.open("ada", ["x"])).read()), data);
    assertEquals(await stored(n), { gens: 1, contents: [`c.${sha}`] });
  },
});

Deno.test({
  name: "nats files: content a sweep marked unreferenced and an upload then adopted is not freed",
  ignore: !available,
  async fn() {
    await using server = await startNatsServer();
    await using n = await node(server.urls[0]!, "n1", 1);
    const { store } = n.files;
    const data = bytesOf(700_000, 22);
    await upload(store, "ada", ["a"], data);
    await store.remove("ada", ["a"]);
    assertEquals((await n.files.sweep({ graceMs: 0 })).marked, 1);
    // The same content arrives between the sweep that marked it and the one that would free it.
    await upload(store, "bob", ["b"], data);
    const next = await n.files.sweep({ graceMs: 0 });
    assertEquals(next.purged, 0);
    assertEquals(await collect((await store.open("bob", ["b"])).read()), data);
    assertEquals((await stored(n)).gens, 1);
  },
});

Deno.test({
  name: "nats files: usage log compaction keeps usage exact, also with changes racing it",
  ignore: !available,
  async fn() {
    await using server = await startNatsServer();
    await using a = await node(server.urls[0]!, "a", 1);
    await using b = await node(server.urls[0]!, "b", 1);
    const jsm = await jetstreamManager(a.nc);
    const messages = async () => (await jsm.streams.info("PARLEY_FS_USAGE")).state.messages;
    await a.files.store.mkdir("ada", ["d"], { parents: false, limits: ROOMY });
    for (let i = 0; i < 12; i++) {
      await upload(a.files.store, "ada", ["d", `f${i}`], bytesOf(900 + i, i));
    }
    for (let i = 0; i < 12; i += 3) await a.files.store.remove("ada", ["d", `f${i}`]);
    const before = await messages();
    assert(before > 40, String(before));
    // Changes through node b while node a compacts.
    const racing = (async () => {
      for (let i = 0; i < 6; i++) {
        await upload(b.files.store, "ada", ["d", `g${i}`], bytesOf(500 + i, 40 + i));
      }
      await b.files.store.remove("ada", ["d", "f1"]);
    })();
    const report = await a.files.sweep();
    await racing;
    assertEquals(report.compacted, 1);
    assert(await messages() < before, `${await messages()} messages, ${before} before`);
    // A second compaction over the deltas appended meanwhile.
    await b.files.sweep();
    let files = 0;
    let entries = 0;
    for await (const e of b.files.store.list("ada", ["d"])) {
      files += e.size;
      entries++;
    }
    const want = { files, partial: 0, reserved: 0, entries: entries + 1 };
    assertEquals(await a.files.store.usage("ada"), want);
    assertEquals(await b.files.store.usage("ada"), want);
    await upload(a.files.store, "ada", ["d", "last"], bytesOf(10, 9));
    assertEquals((await b.files.store.usage("ada")).files, files + 10);
  },
});
