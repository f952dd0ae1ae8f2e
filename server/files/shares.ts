/**
 * Shared files (`file.share`): a record `<files>/shares/<id>.json` points at
 * a file in its owner's home and pins its size and SHA-256. Any signed-in
 * user who knows the id may fetch it with `file.get {shared: id}` or see it
 * with `file.stat {shared: id}`; the file stays in (and counts against) the
 * owner's home, and removing or changing it ends the share: a shared file
 * is served only after its SHA-256 is checked against the record, so a
 * holder never receives a byte of content other than what was shared.
 * Sharing the same file (same path, same content) again gives the same
 * record. A user has at most `maxPerUser` records; at the cap, records whose
 * file was removed or replaced are forgotten first.
 *
 * @module
 */
import { encodeHex } from "@std/encoding/hex";
import { createHash } from "node:crypto";
import { join } from "@std/path";
import type { Json } from "../../protocol/messages.ts";
import type { ClientContext } from "../context.ts";
import { RequestError } from "../errors.ts";
import { pathArg } from "./file_args.ts";
import type { FileStore } from "./file_store.ts";
import { displayPath } from "./remote_path.ts";

/** A share record. */
export interface ShareRecord {
  id: string;
  owner: string;
  /** Components under the owner's home. */
  parts: string[];
  name: string;
  size: number;
  sha256: string;
  created: number;
  /** Inode of the file when shared (records made before it have none). */
  ino?: number;
}

const _ID = /^[0-9a-f]{32}$/;

/** Share records of one store. */
export class Shares {
  #store: FileStore;
  #max: number;
  /** Per owner: record id → hash of (path, sha256), to find a repeated share and count them. */
  #byOwner = new Map<string, Map<string, string>>();

  constructor(store: FileStore, maxPerUser: number) {
    this.#store = store;
    this.#max = maxPerUser;
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
      let rec: ShareRecord;
      try {
        rec = JSON.parse(await Deno.readTextFile(path)) as ShareRecord;
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

  /** `file.share {path}`: shares one of your files; returns `{id, name, size, sha256}`. */
  async share(ctx: ClientContext, args: Json): Promise<unknown> {
    const owner = ctx.user.name;
    const parts = pathArg(ctx, args, "path");
    const r = await this.#store.existing(owner, parts);
    const file = await this.#store.openRead(r);
    let sha256: string;
    let st: Deno.FileInfo;
    try {
      st = await file.stat();
      sha256 = await this.#store.sha256OfOpen(owner, file);
    } finally {
      file.close();
    }
    const rec = await this.#store.ledger.run(owner, async () => {
      const mine = this.#of(owner);
      const want = _dedupeKey(parts, sha256);
      for (const [id, key] of mine) {
        if (key !== want) continue;
        const old = await this.#read(id).catch(() => undefined);
        if (old && old.size === st.size) return old;
      }
      if (mine.size >= this.#max) await this.#prune(owner, mine);
      if (mine.size >= this.#max) {
        throw new RequestError(
          "quota",
          `you already share ${this.#max} files; remove shared files you no longer need`,
        );
      }
      const id = encodeHex(crypto.getRandomValues(new Uint8Array(16)));
      const rec: ShareRecord = {
        id,
        owner,
        parts,
        name: parts[parts.length - 1]!,
        size: st.size,
        sha256,
        created: Date.now(),
        ...(st.ino === null ? {} : { ino: st.ino }),
      };
      // Written aside and renamed, so a record is never seen half-written.
      const path = join(this.#store.sharesDir, `${id}.json`);
      await Deno.writeTextFile(`${path}.tmp`, JSON.stringify(rec), { mode: 0o600 });
      await Deno.rename(`${path}.tmp`, path);
      mine.set(id, want);
      return rec;
    });
    return {
      id: rec.id,
      name: rec.name,
      size: rec.size,
      sha256: rec.sha256,
      owner: rec.owner,
      path: displayPath(rec.parts),
    };
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
      await Deno.remove(join(this.#store.sharesDir, `${id}.json`)).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
      mine.delete(id);
    }
  }

  async #read(id: string): Promise<ShareRecord> {
    return JSON.parse(
      await Deno.readTextFile(join(this.#store.sharesDir, `${id}.json`)),
    ) as ShareRecord;
  }

  /** Finds a share by id; `not_found` when there is none or its file changed. */
  async lookup(id: unknown): Promise<ShareRecord> {
    if (typeof id !== "string" || !_ID.test(id)) {
      throw new RequestError("bad_request", "a share id is 32 lower-case hex digits");
    }
    try {
      return await this.#read(id);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound || e instanceof SyntaxError) {
        throw new RequestError("not_found", `no shared file ${id}`);
      }
      throw e;
    }
  }

  /** `file.stat {shared}` reply. */
  async stat(id: unknown): Promise<unknown> {
    const rec = await this.lookup(id);
    return {
      shared: rec.id,
      name: rec.name,
      type: "file",
      size: rec.size,
      sha256: rec.sha256,
      owner: rec.owner,
    };
  }
}

/** A short key for (path, content): a repeated share of both gets the same record. */
function _dedupeKey(parts: readonly string[], sha256: string): string {
  return createHash("sha256").update(`${parts.join("/")}\0${sha256}`).digest("hex");
}
