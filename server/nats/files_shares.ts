/**
 * Share records of the NATS files backend in `parley_fs`: `s.<id>` holds the
 * record (and the version it was made for), `so.<owner>.<id>` counts an
 * owner's records. Any node resolves a share; changes to one owner's records
 * run in that owner's turn on this node and create keys with CAS.
 *
 * @module
 */
import type { ShareRecord, ShareStore } from "../backend/files.ts";
import { RequestError } from "../errors.ts";
import { getJson, type NatsFilesCtx, tok } from "./files_ctx.ts";
import type { NatsIndex } from "./files_index.ts";

interface Stored {
  rec: ShareRecord;
  version: string;
}

const _ID = /^[0-9a-f]{32}$/;

function _newId(): string {
  const r = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(r, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** The share store over `ctx`'s bucket; liveness is checked against `index`. */
export function natsShares(ctx: NatsFilesCtx, index: NatsIndex): ShareStore {
  const ownerKey = (owner: string, id: string) => `so.${tok(owner)}.${id}`;
  const forget = async (id: string) => {
    if (!_ID.test(id)) return;
    const s = await getJson<Stored>(ctx.kv, `s.${id}`);
    if (!s) return;
    await ctx.kv.delete(ownerKey(s.value.rec.owner, id));
    await ctx.kv.delete(`s.${id}`);
  };
  const live = async (s: Stored) => {
    const e = await index.get(s.rec.owner, s.rec.parts);
    return !!e && e.value.t === "f" && e.value.size === s.rec.size &&
      e.value.sha256 === s.rec.sha256 && (s.version === "" || e.value.v === s.version);
  };
  return {
    create(file, max) {
      return index.turn(`share:${file.owner}`, async () => {
        const mine: Stored[] = [];
        const it = await ctx.kv.keys(`so.${tok(file.owner)}.*`);
        for await (const k of it) {
          const s = await getJson<Stored>(ctx.kv, `s.${k.slice(k.lastIndexOf(".") + 1)}`);
          if (s) mine.push(s.value);
        }
        const same = mine.find((s) =>
          s.rec.size === file.size && s.rec.sha256 === file.sha256 &&
          s.rec.parts.join("/") === file.parts.join("/")
        );
        if (same) return same.rec;
        let count = mine.length;
        for (const s of mine) {
          if (count < max) break;
          if (!(await live(s))) {
            await forget(s.rec.id);
            count--;
          }
        }
        if (count >= max) throw new RequestError("quota", "too many shares");
        const rec: ShareRecord = {
          id: _newId(),
          owner: file.owner,
          parts: [...file.parts],
          name: file.parts.at(-1) ?? "",
          size: file.size,
          sha256: file.sha256,
          created: Date.now(),
        };
        await ctx.kv.create(`s.${rec.id}`, JSON.stringify({ rec, version: file.version }));
        await ctx.kv.put(ownerKey(file.owner, rec.id), "1");
        return rec;
      });
    },
    async resolve(id) {
      if (!_ID.test(id)) return undefined;
      return (await getJson<Stored>(ctx.kv, `s.${id}`))?.value.rec;
    },
    forget,
  };
}
