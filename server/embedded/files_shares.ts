/**
 * The embedded {@linkcode ShareStore}: one record per share,
 * `<files>/shares/<id>.json` (written as `<id>.json.tmp`, then renamed, so a
 * record is never seen half-written). A record pins the file's path, size,
 * SHA-256 and inode. Sharing the same file (same path, same content) again
 * returns the same record; at the per-owner cap, records whose file is gone,
 * resized or replaced (another inode) are forgotten first.
 *
 * @module
 */
import { encodeHex } from "@std/encoding/hex";
import { createHash } from "node:crypto";
import { join } from "@std/path";
import type { ShareRecord, ShareStore } from "../backend/files.ts";
import { RequestError } from "../errors.ts";
import type { DiskStore } from "./files_store.ts";

/** A record as stored on disk. */
interface _DiskRecord extends ShareRecord {
  /** Inode of the file when shared (records made before it have none). */
  ino?: number;
}

const _ID = /^[0-9a-f]{32}$/;

/** Share records under `<files>/shares/`. */
export class DiskShares implements ShareStore {
  #store: DiskStore;
  /** Per owner: record id → hash of (path, sha256), to find a repeated share and count them. */
  #byOwner = new Map<string, Map<string, string>>();

  constructor(store: DiskStore) {
    this.#store = store;
  }

  /** Reads the records on disk; unreadable ones (a write cut short) are removed. */
  async init(): Promise<void> {
    for await (const e of Deno.readDir(this.#store.sharesDir)) {
      const m = /^([0-9a-f]{32})\.json$/.exec(e.name);
      const path = join(this.#store.sharesDir, e.name);
      if (!m || !e.isFile) {
        if (e.name.endsWith(".tmp")) await Deno.remove(path);
        continue;
      }
      let rec: _DiskRecord;
      try {
        rec = JSON.parse(await Deno.readTextFile(path)) as _DiskRecord;
        if (typeof rec.owner !== "string" || !Array.isArray(rec.parts)) throw new TypeError();
      } catch {
        await Deno.remove(path);
        continue;
      }
      this.#of(rec.owner).set(m[1]!, _dedupeKey(rec.parts, rec.sha256));
    }
  }

  #of(owner: string): Map<string, string> {
    let m = this.#byOwner.get(owner);
    if (!m) this.#byOwner.set(owner, m = new Map());
    return m;
  }

  async create(
    file: { owner: string; parts: string[]; size: number; sha256: string; version: string },
    max: number,
  ): Promise<ShareRecord> {
    const { owner, parts, size, sha256 } = file;
    return await this.#store.ledger.run(owner, async () => {
      const mine = this.#of(owner);
      const want = _dedupeKey(parts, sha256);
      for (const [id, key] of mine) {
        if (key !== want) continue;
        const old = await this.#read(id).catch(() => undefined);
        if (old && old.size === size) return _public(old);
      }
      if (mine.size >= max) await this.#prune(owner, mine);
      if (mine.size >= max) {
        throw new RequestError(
          "quota",
          `you already share ${max} files; remove shared files you no longer need`,
        );
      }
      const id = encodeHex(crypto.getRandomValues(new Uint8Array(16)));
      const ino = _inoOf(file.version);
      const rec: _DiskRecord = {
        id,
        owner,
        parts,
        name: parts[parts.length - 1]!,
        size,
        sha256,
        created: Date.now(),
        ...(ino === undefined ? {} : { ino }),
      };
      const path = this.#path(id);
      await Deno.writeTextFile(`${path}.tmp`, JSON.stringify(rec), { mode: 0o600 });
      await Deno.rename(`${path}.tmp`, path);
      mine.set(id, want);
      return _public(rec);
    });
  }

  /** Forgets `owner`'s records whose file is gone, resized or replaced (another inode). */
  async #prune(owner: string, mine: Map<string, string>): Promise<void> {
    for (const id of [...mine.keys()]) {
      const rec = await this.#read(id).catch(() => undefined);
      let live = false;
      if (rec) {
        const r = await this.#store.resolve(owner, rec.parts).catch(() => undefined);
        live = !!r?.info?.isFile && r.info.size === rec.size &&
          (rec.ino === undefined || r.info.ino === rec.ino);
      }
      if (live) continue;
      await this.#remove(id);
      mine.delete(id);
    }
  }

  #path(id: string): string {
    return join(this.#store.sharesDir, `${id}.json`);
  }

  async #read(id: string): Promise<_DiskRecord> {
    return JSON.parse(await Deno.readTextFile(this.#path(id))) as _DiskRecord;
  }

  async #remove(id: string): Promise<void> {
    await Deno.remove(this.#path(id)).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
  }

  async resolve(id: string): Promise<ShareRecord | undefined> {
    if (!_ID.test(id)) return undefined;
    try {
      return _public(await this.#read(id));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound || e instanceof SyntaxError) return undefined;
      throw e;
    }
  }

  async forget(id: string): Promise<void> {
    if (!_ID.test(id)) return;
    const rec = await this.#read(id).catch(() => undefined);
    await this.#remove(id);
    if (rec) this.#byOwner.get(rec.owner)?.delete(id);
  }
}

function _public(r: _DiskRecord): ShareRecord {
  return {
    id: r.id,
    owner: r.owner,
    parts: r.parts,
    name: r.name,
    size: r.size,
    sha256: r.sha256,
    created: r.created,
  };
}

/** The inode in an embedded version string (`dev:ino`). */
function _inoOf(version: string): number | undefined {
  const ino = Number(version.slice(version.indexOf(":") + 1));
  return version.endsWith(":") || !Number.isSafeInteger(ino) ? undefined : ino;
}

/** A short key for (path, content): a repeated share of both gets the same record. */
function _dedupeKey(parts: readonly string[], sha256: string): string {
  return createHash("sha256").update(`${parts.join("/")}\0${sha256}`).digest("hex");
}
