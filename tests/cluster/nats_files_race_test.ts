/**
 * Races on the NATS files backend at R3 (3-server cluster, two nodes on
 * different servers, three contenders per node): creating one path, replacing
 * one file, making one directory and taking one upload's lease. On
 * nats-server 2.9.10 a KV update at a revision is not atomic at R3 (several
 * writers at one revision all succeed); the backend's CAS (`files_cas.ts`)
 * must still give exactly one winner every round, the others a clear error,
 * an index entry that reads back as the winner's bytes, and exact usage.
 * Skipped when nats-server is missing.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { UploadSession, UploadTarget } from "../../server/backend/files.ts";
import { RequestError } from "../../server/errors.ts";
import { FS_BUCKET, uploadKey, type UploadRecord } from "../../server/nats/files_ctx.ts";
import { bytesOf, collect, ROOMY, sha256Hex } from "../backend/files_contract.ts";
import { direct, twoNodes } from "./nats_files_fixture.ts";
import { natsAvailable } from "./nats_fixture.ts";

const available = natsAvailable();
const ROUNDS = 5;
const PER_NODE = 3;

/** Outcome codes of settled promises: "ok" or the RequestError code. */
function codes(settled: PromiseSettledResult<unknown>[]): string[] {
  return settled.map((s) =>
    s.status === "fulfilled"
      ? "ok"
      : s.reason instanceof RequestError
      ? s.reason.code
      : `unexpected: ${String(s.reason)}`
  );
}

/** An upload of ada's file `name` at the top of her home, by the upload id `tag`. */
function _target(name: string, tag: string, size = 5000, overwrite = false): UploadTarget {
  return { user: "ada", parts: [name], size, id: { tag }, overwrite, parents: false };
}

Deno.test({
  name: "nats files race: one winner per path among concurrent creators and replacers on two nodes",
  ignore: !available,
  async fn() {
    await using nodes = await twoNodes();
    const stores = [nodes.a.files.store, nodes.b.files.store];
    const limits = { ...ROOMY, maxEntries: 10_000, maxPartials: 64 };
    let files = 0;
    const tally = new Map<string, number>();
    const count = (cs: string[]) => {
      for (const c of cs) tally.set(c, (tally.get(c) ?? 0) + 1);
    };
    const race = async (name: string, overwrite: boolean, round: number) => {
      // Every contender has written its whole file before any finishes: the finishes race.
      const datas = Array.from(
        { length: 2 * PER_NODE },
        (_, k) => bytesOf(1000 + 97 * k + round, round * 10 + k),
      );
      const sessions: UploadSession[] = [];
      for (const [k, data] of datas.entries()) {
        const t = _target(name, `${name}-${overwrite}-${k}`, data.byteLength, overwrite);
        const s = await stores[k % 2]!.beginUpload(t, { offset: 0, limits, hashGate: direct });
        sessions.push(s);
        await s.write(data);
      }
      const shas = await Promise.all(datas.map((d) => sha256Hex(d)));
      const settled = await Promise.allSettled(sessions.map((s, k) => s.finish(shas[k]!)));
      for (const s of sessions) await s.close();
      const cs = codes(settled);
      count(cs);
      const loss = overwrite ? "busy" : "exists";
      assertEquals(cs.filter((c) => c !== "ok" && c !== loss), [], `round ${round}: ${cs}`);
      // Creators: exactly one. Replacers: one per revision; those finishing in turn on one
      // node each replace the previous winner, those racing at one revision lose with busy.
      const oks = cs.filter((c) => c === "ok").length;
      if (!overwrite) assertEquals(oks, 1, `round ${round} ${name}: ${cs}`);
      else assert(oks >= 1, `round ${round} ${name}: ${cs}`);
      const now = await stores[1]!.stat("ada", [name]);
      const won = datas.find((d, k) => cs[k] === "ok" && d.byteLength === now?.size);
      if (!won) {
        throw new Error(`round ${round} ${name}: the entry is no winner's (${now?.size} B)`);
      }
      await using r = await stores[round % 2]!.open("ada", [name]);
      assertEquals(r.entry.size, won.byteLength);
      assertEquals(await collect(r.read()), won);
      return won.byteLength;
    };
    for (let round = 0; round < ROUNDS; round++) {
      const name = `p${round}`;
      files += await race(name, false, round);
      const before = (await stores[0]!.stat("ada", [name]))!.size;
      files += await race(name, true, round + 100) - before;
    }
    const u = await stores[1]!.usage("ada");
    assertEquals([u.files, u.reserved, u.entries], [files, 0, ROUNDS]);
    const names: string[] = [];
    for await (const e of stores[0]!.list("ada", [])) names.push(e.name);
    assertEquals(names.sort(), Array.from({ length: ROUNDS }, (_, i) => `p${i}`).sort());
    console.log(`finishes: ${JSON.stringify(Object.fromEntries(tally))}`);
  },
});

Deno.test({
  name: "nats files race: one mkdir and one upload lease among concurrent takers on two nodes",
  ignore: !available,
  async fn() {
    await using nodes = await twoNodes();
    const stores = [nodes.a.files.store, nodes.b.files.store];
    const n = 2 * PER_NODE;
    for (let round = 0; round < ROUNDS; round++) {
      const made = codes(
        await Promise.allSettled(
          Array.from(
            { length: n },
            (_, k) => stores[k % 2]!.mkdir("ada", [`d${round}`], { parents: false, limits: ROOMY }),
          ),
        ),
      );
      assertEquals(made.filter((c) => c === "ok").length, 1, `mkdir round ${round}: ${made}`);
      assertEquals(made.filter((c) => c !== "ok" && c !== "exists"), []);
      const t = _target(`u${round}`, `lease-${round}`);
      const settled = await Promise.allSettled(
        Array.from(
          { length: n },
          (_, k) => stores[k % 2]!.beginUpload(t, { offset: 0, limits: ROOMY, hashGate: direct }),
        ),
      );
      const cs = codes(settled);
      assertEquals(cs.filter((c) => c === "ok").length, 1, `lease round ${round}: ${cs}`);
      assertEquals(cs.filter((c) => c !== "ok" && c !== "busy"), []);
      // Only the winner holds a reservation.
      assertEquals((await stores[1]!.usage("ada")).reserved, 5000);
      const winner = settled.find((s) => s.status === "fulfilled") as PromiseFulfilledResult<
        UploadSession
      >;
      await winner.value.write(bytesOf(5000, round));
      await winner.value.finish(await sha256Hex(bytesOf(5000, round)));
      await winner.value.close();
    }
    assertEquals(await stores[0]!.usage("ada"), {
      files: ROUNDS * 5000,
      partial: 0,
      reserved: 0,
      entries: 2 * ROUNDS,
    });
  },
});

Deno.test({
  name: "nats files race: a lease taken on another node while a taker makes room refuses the taker",
  ignore: !available,
  async fn() {
    await using nodes = await twoNodes();
    const store = nodes.a.files.store;
    // Interrupted uploads: the taker reads each while making room, after its first read.
    for (let k = 0; k < 6; k++) {
      const s = await store.beginUpload(
        _target(`idle${k}`, `idle-${k}`),
        { offset: 0, limits: ROOMY, hashGate: direct },
      );
      await s.write(bytesOf(1000, k));
      await s.close();
    }
    const before = await store.usage("ada");
    const kv = await new Kvm(jetstream(nodes.b.nc)).open(FS_BUCKET);
    for (let round = 0; round < 5; round++) {
      const t = _target(`taken${round}`, `taken-${round}`);
      const key = await uploadKey(t);
      const other: UploadRecord = {
        parts: t.parts,
        size: t.size,
        gen: `other-${round}`,
        partial: 0,
        created: Date.now(),
        lease: { id: `other-${round}`, until: Date.now() + 600_000 },
      };
      // As soon as the taker asks for the record (and finds none), a session elsewhere takes the
      // lease: it lands while the taker makes room, before the taker reads the record again.
      const sub = nodes.b.nc.subscribe(`$JS.API.STREAM.MSG.GET.KV_${FS_BUCKET}`);
      const taken = (async () => {
        for await (const m of sub) {
          if (!m.string().includes(`$KV.${FS_BUCKET}.${key}`)) continue;
          sub.unsubscribe();
          return await kv.create(key, JSON.stringify(other));
        }
        throw new Error("the taker never read the record");
      })();
      await nodes.b.nc.flush();
      await assertRejects(
        () => store.beginUpload(t, { offset: 0, limits: ROOMY, hashGate: direct }),
        RequestError,
        "upload running elsewhere",
      );
      const rev = await taken;
      const e = await kv.get(key);
      assertEquals([e?.revision, e?.json<UploadRecord>().lease?.id], [rev, `other-${round}`]);
      await kv.delete(key);
    }
    // The refused taker holds no reservation.
    assertEquals(await store.usage("ada"), before);
  },
});
