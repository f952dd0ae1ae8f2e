/**
 * The path index of the NATS files backend: one KV key per file or directory
 * (`h.<user>.<component>…`, directories as explicit entries), listed by key
 * prefix with server-side subject filtering. Every change to one user's home
 * runs in that user's turn on this node and with CAS on the keys it touches
 * (`files_cas.ts`: create, or update/delete at the read revision, atomic at R3
 * on 2.9.10 too), its accounting appended to the usage log
 * (`files_usage.ts`): two nodes creating the same path at the same instant
 * get one winner, the other `exists`. A file entry names the chunk set of its
 * content (`g`, shared by every path with that content, `files_content.ts`).
 * Moving a directory rewrites the keys of its tree one by one: a crash in the
 * middle leaves both names of part of the tree (the files' bytes are shared,
 * never copied).
 *
 * @module
 */
import type { FileEntry, FileLimits, UploadTarget } from "../backend/files.ts";
import { RequestError } from "../errors.ts";
import { MAX_DEPTH } from "../files/remote_path.ts";
import {
  getJson,
  type IndexEntry,
  indexKey,
  type NatsFilesCtx,
  newGen,
  untok,
} from "./files_ctx.ts";
import { casJson, casWrite, readKey } from "./files_cas.ts";
import { bumpUsage } from "./files_usage.ts";

/** Longest path this backend allows (KV keys stay under the control-line limit). */
export const NATS_MAX_PATH_BYTES = 2048;

type Got = { value: IndexEntry; rev: number };

/** The index entry as the interface's {@linkcode FileEntry}. */
export function toEntry(name: string, e: IndexEntry): FileEntry {
  return { name, type: e.t === "f" ? "file" : "dir", size: e.size, mtime: e.mtime, version: e.v };
}

const _bytes = (parts: readonly string[]) => new TextEncoder().encode(parts.join("/")).byteLength;

/** Path index operations. */
export class NatsIndex {
  #turns = new Map<string, Promise<unknown>>();

  constructor(private ctx: NatsFilesCtx) {}

  /** The entry at `parts` (not the home). */
  get(user: string, parts: readonly string[]): Promise<Got | undefined> {
    return getJson<IndexEntry>(this.ctx.kv, indexKey(user, parts));
  }

  /** Runs `fn` in `user`'s turn on this node. */
  turn<T>(user: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#turns.get(user) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail: Promise<void> = run.then(() => {}, () => {}).then(() => {
      if (this.#turns.get(user) === tail) this.#turns.delete(user);
    });
    this.#turns.set(user, tail);
    return run;
  }

  /** Throws unless the parent of `parts` is a directory (`not_found` / `bad_request`). */
  async parentDir(user: string, parts: readonly string[]): Promise<void> {
    if (parts.length <= 1) return;
    const p = await this.get(user, parts.slice(0, -1));
    if (!p) throw new RequestError("not_found", "no such directory");
    if (p.value.t !== "d") throw new RequestError("bad_request", "not a directory");
  }

  async stat(user: string, parts: readonly string[]): Promise<FileEntry | undefined> {
    if (parts.length === 0) return { name: "~", type: "dir", size: 0, mtime: 0, version: "home" };
    const e = await this.get(user, parts);
    if (e) return toEntry(parts.at(-1)!, e.value);
    await this.parentDir(user, parts);
    return undefined;
  }

  /** Keys strictly below `parts` (`.*` for children, `.>` for the whole tree). */
  async keys(user: string, parts: readonly string[], deep: boolean): Promise<string[]> {
    const out: string[] = [];
    const it = await this.ctx.kv.keys(`${indexKey(user, parts)}.${deep ? ">" : "*"}`);
    for await (const k of it) out.push(k);
    return out;
  }

  async *list(user: string, parts: readonly string[]): AsyncIterable<FileEntry> {
    const d = await this.stat(user, parts);
    if (!d) throw new RequestError("not_found", "no such directory");
    if (d.type !== "dir") throw new RequestError("bad_request", "not a directory");
    for (const k of await this.keys(user, parts, false)) {
      const e = await getJson<IndexEntry>(this.ctx.kv, k);
      if (e) yield toEntry(untok(k.slice(k.lastIndexOf(".") + 1)), e.value);
    }
  }

  /** Creates one directory (`okIfDir`: no error when it is one already). */
  async #mkOne(user: string, parts: readonly string[], limits: FileLimits, okIfDir: boolean) {
    const entry: IndexEntry = { t: "d", size: 0, mtime: Date.now(), v: `d-${newGen()}` };
    const key = indexKey(user, parts);
    let ex = await readKey<IndexEntry>(this.ctx, key);
    if (!ex.value) {
      await bumpUsage(this.ctx, user, { entries: 1 }, limits);
      let ok: number | undefined;
      try {
        ok = await casJson(this.ctx, key, entry, ex.rev);
      } finally {
        if (ok === undefined) await bumpUsage(this.ctx, user, { entries: -1 });
      }
      if (ok !== undefined) return;
      ex = await readKey<IndexEntry>(this.ctx, key);
    }
    if (ex.value?.t === "d" && okIfDir) return;
    throw new RequestError(ex.value?.t === "f" ? "bad_request" : "exists", "entry exists");
  }

  /** Creates missing directories along `parts` (no turn taken). */
  async mkdirs(user: string, parts: readonly string[], limits: FileLimits): Promise<void> {
    for (let i = 1; i <= parts.length; i++) {
      const p = await this.get(user, parts.slice(0, i));
      if (p?.value.t === "d") continue;
      if (p) throw new RequestError("bad_request", "not a directory");
      await this.#mkOne(user, parts.slice(0, i), limits, true);
    }
  }

  mkdir(user: string, parts: readonly string[], o: { parents: boolean; limits: FileLimits }) {
    return this.turn(user, async () => {
      if (o.parents) return await this.mkdirs(user, parts, o.limits);
      await this.parentDir(user, parts);
      await this.#mkOne(user, parts, o.limits, false);
    });
  }

  rmdir(user: string, parts: readonly string[]): Promise<void> {
    return this.turn(user, async () => {
      const d = await this.#need(user, parts);
      if (d.value.t !== "d") throw new RequestError("bad_request", "not a directory");
      if ((await this.keys(user, parts, false)).length > 0) {
        throw new RequestError("bad_request", "directory not empty");
      }
      await this.#cas(indexKey(user, parts), null, d.rev);
      await bumpUsage(this.ctx, user, { entries: -1 });
    });
  }

  remove(user: string, parts: readonly string[]): Promise<number> {
    return this.turn(user, async () => {
      const f = await this.#need(user, parts);
      if (f.value.t !== "f") throw new RequestError("bad_request", "not a file");
      await this.#cas(indexKey(user, parts), null, f.rev);
      await bumpUsage(this.ctx, user, { files: -f.value.size, entries: -1 });
      return f.value.size;
    });
  }

  /** A CAS write; a conflict (another node changed the entry) is `busy`: retry. */
  async #cas(key: string, value: string | null, rev: number): Promise<number> {
    const n = await casWrite(this.ctx, key, value, rev);
    if (n === undefined) throw new RequestError("busy", "changed meanwhile on another node; retry");
    return n;
  }

  async #need(user: string, parts: readonly string[]): Promise<Got> {
    if (parts.length === 0) throw new RequestError("bad_request", "the home itself");
    const e = await this.get(user, parts);
    if (e) return e;
    await this.parentDir(user, parts);
    throw new RequestError("not_found", "no such entry");
  }

  rename(
    user: string,
    from: readonly string[],
    to: readonly string[],
    o: { overwrite: boolean },
  ): Promise<string[]> {
    return this.turn(user, async () => {
      const src = await this.#need(user, from);
      let dest = [...to];
      const into = to.length === 0 ? { value: { t: "d" } } : await this.get(user, to);
      if (into?.value.t === "d" && indexKey(user, to) !== indexKey(user, from)) {
        dest = [...to, from.at(-1)!];
      }
      if (indexKey(user, dest) === indexKey(user, from)) return dest;
      const under = (p: readonly string[]) =>
        p.length > from.length && from.every((c, i) => p[i] === c);
      if (src.value.t === "d" && under(dest)) {
        throw new RequestError("bad_request", "cannot move a directory into itself");
      }
      const tree = src.value.t === "d" ? await this.keys(user, from, true) : [];
      const below = tree.map((k) => k.split(".").slice(2 + from.length).map(untok));
      const tooFar = (rest: string[]) =>
        dest.length + rest.length > MAX_DEPTH ||
        _bytes([...dest, ...rest]) > NATS_MAX_PATH_BYTES;
      if (tooFar([]) || below.some(tooFar)) {
        throw new RequestError("bad_request", "path too long or too deep at the new place");
      }
      await this.parentDir(user, dest);
      const destKey = indexKey(user, dest);
      const got = await readKey<IndexEntry>(this.ctx, destKey);
      const dst = got.value;
      if (dst && dst.v === src.value.v) return dest;
      if (dst && (!o.overwrite || dst.t === "d" || src.value.t === "d")) {
        throw new RequestError("exists", "target exists");
      }
      const written = await casJson(this.ctx, destKey, src.value, got.rev);
      if (written === undefined) throw new RequestError("exists", "target changed meanwhile");
      const fromKey = indexKey(user, from);
      for (const k of tree) {
        const e = await this.ctx.kv.get(k);
        if (e?.operation === "PUT") {
          await this.ctx.kv.put(destKey + k.slice(fromKey.length), e.value);
        }
      }
      for (const k of tree.reverse()) await this.ctx.kv.delete(k);
      if (await casWrite(this.ctx, fromKey, null, src.rev) === undefined) {
        // The source changed on another node meanwhile: take the new name back (a file; a
        // directory's tree was moved already and only its entry stays under both names).
        const back = dst ? JSON.stringify(dst) : null;
        if (src.value.t === "f") await casWrite(this.ctx, destKey, back, written);
        throw new RequestError("busy", "changed meanwhile on another node; retry");
      }
      if (dst) await bumpUsage(this.ctx, user, { files: -dst.size, entries: -1 });
      return dest;
    });
  }

  /**
   * Makes a finished upload visible: the atomic step; its reservation becomes
   * file bytes. `gen` is the chunk set holding the content.
   */
  publishFile(
    t: UploadTarget,
    f: { gen: string; sha256: string },
    limits: FileLimits,
  ): Promise<void> {
    return this.turn(t.user, async () => {
      if (t.parents) await this.mkdirs(t.user, t.parts.slice(0, -1), limits);
      else await this.parentDir(t.user, t.parts);
      const entry: IndexEntry = {
        t: "f",
        size: t.size,
        mtime: Date.now(),
        v: `f-${newGen()}`,
        sha256: f.sha256,
        g: f.gen,
      };
      const key = indexKey(t.user, t.parts);
      const got = await readKey<IndexEntry>(this.ctx, key);
      const cur = got.value;
      if (cur && !t.overwrite) throw new RequestError("exists", "file exists");
      if (cur?.t === "d") throw new RequestError("bad_request", "a directory is there");
      if (!cur) await bumpUsage(this.ctx, t.user, { entries: 1 }, limits);
      let ok: number | undefined;
      try {
        ok = await casJson(this.ctx, key, entry, got.rev);
      } finally {
        if (ok === undefined && !cur) await bumpUsage(this.ctx, t.user, { entries: -1 });
      }
      if (ok === undefined) {
        if (!t.overwrite) throw new RequestError("exists", "file appeared meanwhile");
        throw new RequestError("busy", "changed meanwhile on another node; retry");
      }
      await bumpUsage(this.ctx, t.user, {
        reserved: -t.size,
        files: t.size - (cur?.size ?? 0),
      });
    });
  }
}
