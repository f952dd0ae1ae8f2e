/**
 * The NATS files backend on one server: the GC sweep, the periodic sweeper
 * under its lease, dead sessions settled, the per-user upload count and
 * directory moves checked over the whole tree. Skipped when nats-server is
 * missing.
 */
import { assert, assertEquals } from "@std/assert";
import { Kvm } from "@nats-io/kv";
import { bytesOf, collect, rejectsWith, ROOMY, upload } from "../backend/files_contract.ts";
import { direct, node, target } from "./nats_files_fixture.ts";
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
