/**
 * The NATS files backend across nodes: two backends ("nodes") on one 3-server
 * cluster with R3, each connected to a different server: a file put through
 * one is read byte-exact through the other, an upload interrupted on one
 * (closed, or its node gone) resumes on the other, and one quota holds across
 * both. Skipped when nats-server is missing.
 */
import { assertEquals } from "@std/assert";
import {
  bytesOf,
  collect,
  rejectsWith,
  ROOMY,
  sha256Hex,
  upload,
} from "../backend/files_contract.ts";
import { direct, target, twoNodes } from "./nats_files_fixture.ts";
import { natsAvailable } from "./nats_fixture.ts";

const available = natsAvailable();

Deno.test({
  name: "nats files: put through one node, read byte-exact through another (R3)",
  ignore: !available,
  async fn() {
    await using nodes = await twoNodes();
    const { a, b } = nodes;
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
    await using nodes = await twoNodes(800);
    const { a, b } = nodes;
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
    await using nodes = await twoNodes();
    const { a, b } = nodes;
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

// Usage stays exact: on 2.9.10 at R3 a KV CAS counter would lose deltas here (files_usage.ts).
Deno.test({
  name: "nats files: usage is exact after concurrent changes through two nodes",
  ignore: !available,
  async fn() {
    await using nodes = await twoNodes();
    const { a, b } = nodes;
    await a.files.store.mkdir("ada", ["c"], { parents: false, limits: ROOMY });
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < 16; i++) {
      const s = i % 2 ? a.files.store : b.files.store;
      jobs.push(upload(s, "ada", ["c", `f${i}`], bytesOf(1000 + i, i)));
      jobs.push(s.mkdir("ada", ["c", `d${i}`], { parents: false, limits: ROOMY }));
    }
    await Promise.all(jobs);
    const more: Promise<unknown>[] = [];
    for (let i = 0; i < 16; i++) {
      const s = i % 2 ? b.files.store : a.files.store;
      if (i % 3 === 0) more.push(s.remove("ada", ["c", `f${i}`]));
      else if (i % 3 === 1) {
        more.push(s.rename("ada", ["c", `f${i}`], ["c", `d${i}`], { overwrite: false }));
      } else more.push(upload(s, "ada", ["c", `f${i}`], bytesOf(7, i), { overwrite: true }));
    }
    await Promise.all(more);
    let bytes = 0;
    let entries = 0;
    const walk = async (parts: string[]) => {
      for await (const e of b.files.store.list("ada", parts)) {
        entries++;
        bytes += e.size;
        if (e.type === "dir") await walk([...parts, e.name]);
      }
    };
    await walk([]);
    assertEquals(await a.files.store.usage("ada"), {
      files: bytes,
      partial: 0,
      reserved: 0,
      entries,
    });
  },
});
