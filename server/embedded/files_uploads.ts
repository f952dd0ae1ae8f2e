/**
 * Uploads on disk: bytes go to `<files>/.parley-tmp/<key>.part` (with a
 * record `<key>.json`), keyed by (user, target path, size, and either the
 * SHA-256 the client declared up front or a resume tag it chose). An
 * interrupted upload leaves its partial, and a later upload with the same key
 * continues from its length (`files_upload_session.ts` writes and commits).
 *
 * Quota: an upload reserves its whole size in the user's ledger before it is
 * accepted (so pipelined uploads cannot all pass the check), an interrupted
 * upload counts with the bytes it left on disk, and the reservation turns
 * into file bytes at commit, all inside the user's ledger turn. A user has at
 * most `maxPartials` uploads, running or interrupted, at once.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "@std/path";
import type {
  BeginUploadOptions,
  FileLimits,
  UploadSession,
  UploadTarget,
} from "../backend/files.ts";
import { RequestError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { displayPath } from "../files/remote_path.ts";
import { formatBytes as _fmtBytes } from "../../protocol/format_bytes.ts";
import { type DiskStore, lstatIfPresent, type Resolved } from "./files_store.ts";
import { type Account, checkEntries, reservedBytes, usedBytes } from "./files_ledger.ts";
import { DiskUploadSession } from "./files_upload_session.ts";

/** An upload as the disk store sees it. */
export interface UploadPlan {
  target: UploadTarget;
  /** Hash of the upload key: names `<key>.part` and `<key>.json`. */
  key: string;
  /** Bytes of the file it replaces (0 when new). */
  replaced: number;
}

interface _PartialMeta {
  user: string;
  path: string;
  size: number;
  sha256?: string;
  tag?: string;
  created: number;
}

/** Removes a file, no error when it is gone. */
export async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/** Flushes a directory entry change to disk (best effort: not every FS allows it). */
export async function syncDir(dir: string): Promise<void> {
  let f: Deno.FsFile | undefined;
  try {
    f = await Deno.open(dir, { read: true });
    await f.sync();
  } catch {
    // Some file systems refuse fsync on a directory; the data itself is synced.
  } finally {
    f?.close();
  }
}

/** Uploads in progress and interrupted, under `<files>/.parley-tmp/`. */
export class DiskUploads {
  #store: DiskStore;
  #log: Logger;

  constructor(store: DiskStore, log: Logger) {
    this.#store = store;
    this.#log = log;
  }

  /**
   * Reads the partial uploads left on disk into the ledger; drops records
   * without bytes, bytes without a record, and partials already committed
   * (a hard link to a file in a home, left by a stop between link and unlink).
   */
  async init(): Promise<void> {
    const names = new Set<string>();
    for await (const e of Deno.readDir(this.#store.tmpDir)) names.add(e.name);
    for (const name of names) {
      const m = /^([0-9a-f]{64})\.(part|json)$/.exec(name);
      if (!m) {
        await removeIfPresent(join(this.#store.tmpDir, name));
        continue;
      }
      if (m[2] === "part") {
        if (!names.has(`${m[1]}.json`)) await removeIfPresent(this.partPath(m[1]!));
        continue;
      }
      const key = m[1]!;
      const info = await lstatIfPresent(this.partPath(key));
      let meta: _PartialMeta | undefined;
      try {
        meta = JSON.parse(await Deno.readTextFile(this.#metaPath(key))) as _PartialMeta;
      } catch {
        meta = undefined;
      }
      if (!info?.isFile || (info.nlink ?? 1) > 1 || typeof meta?.user !== "string") {
        await this.dropPartial(key);
        continue;
      }
      this.#store.ledger.notePartial(meta.user, key, {
        bytes: info.size,
        touched: info.mtime?.getTime() ?? meta.created ?? 0,
      });
    }
  }

  /**
   * Deletes idle partial uploads older than `maxAgeMs`, and the oldest
   * beyond `maxPartials` per user.
   */
  async sweep(maxAgeMs: number, maxPartials: number, now = Date.now()): Promise<void> {
    for (const user of this.#store.ledger.usersWithPartials()) {
      await this.#store.ledger.run(user, async (acct) => {
        const idle = [...acct.partials].sort((a, b) => a[1].touched - b[1].touched);
        let over = acct.partials.size + acct.active.size - maxPartials;
        for (const [key, p] of idle) {
          if (over <= 0 && now - p.touched <= maxAgeMs) continue;
          await this.dropPartial(key);
          acct.partials.delete(key);
          over--;
        }
      });
    }
  }

  async #plan(target: UploadTarget, limits: FileLimits): Promise<UploadPlan> {
    const { user, parts } = target;
    if (parts.length === 0) throw new RequestError("bad_request", "cannot upload onto ~ itself");
    const resolved = await this.#resolveTarget(user, parts, target.parents);
    let replaced = 0;
    if (resolved.info) {
      if (!resolved.info.isFile) {
        throw new RequestError("exists", `${displayPath(parts)} exists and is not a file`);
      }
      if (!target.overwrite) {
        throw new RequestError(
          "exists",
          `${displayPath(parts)} already exists; use overwrite to replace it`,
        );
      }
      replaced = resolved.info.size;
    }
    const id = "sha256" in target.id ? target.id.sha256 : `tag\0${target.id.tag}`;
    const key = createHash("sha256")
      .update(`${user}\0${parts.join("/")}\0${target.size}\0${id}`)
      .digest("hex");
    const plan = { target, key, replaced };
    // An early answer for file.offset; the binding check is in #reserve.
    await this.#store.ledger.run(user, (acct) => _checkQuota(acct, plan, limits));
    return plan;
  }

  /**
   * Inside the user's ledger turn: checks the quota and the number of
   * uploads, then reserves the whole size (an idle partial of the same
   * upload is covered by the reservation from now on).
   */
  async #reserve(acct: Account, plan: UploadPlan, limits: FileLimits): Promise<void> {
    if (acct.active.has(plan.key)) {
      throw new RequestError(
        "busy",
        `an upload of ${displayPath(plan.target.parts)} is already running`,
      );
    }
    _checkQuota(acct, plan, limits);
    if (plan.replaced === 0) checkEntries(acct, acct.active.size + 1, limits.maxEntries);
    if (!acct.partials.has(plan.key)) {
      const max = limits.maxPartials;
      if (acct.active.size >= max) {
        throw new RequestError("busy", `at most ${max} uploads at once per user; retry later`);
      }
      // Room for this one: drop the oldest interrupted uploads.
      const idle = [...acct.partials].sort((a, b) => a[1].touched - b[1].touched);
      while (acct.partials.size + acct.active.size >= max && idle.length > 0) {
        const [old] = idle.shift()!;
        await this.dropPartial(old);
        acct.partials.delete(old);
      }
    }
    acct.partials.delete(plan.key);
    acct.active.set(plan.key, plan.target.size);
  }

  /**
   * Inside the user's ledger turn, after an upload that did not commit: the
   * reservation ends and the partial left on disk (if any) counts as it is.
   */
  async settle(acct: Account, key: string): Promise<void> {
    acct.active.delete(key);
    const info = await lstatIfPresent(this.partPath(key));
    if (info?.isFile) {
      acct.partials.set(key, { bytes: info.size, touched: Date.now() });
    } else {
      acct.partials.delete(key);
      await removeIfPresent(this.#metaPath(key));
    }
  }

  /** Resolves the target; a missing parent is fine when `parents` (created at commit time). */
  async #resolveTarget(user: string, parts: string[], parents: boolean): Promise<Resolved> {
    try {
      return await this.#store.resolve(user, parts);
    } catch (e) {
      if (!(parents && e instanceof RequestError && e.code === "not_found")) throw e;
      return { abs: "", parts, info: undefined };
    }
  }

  /** Where the bytes of upload `key` are. */
  partPath(key: string): string {
    return join(this.#store.tmpDir, `${key}.part`);
  }

  #metaPath(key: string): string {
    return join(this.#store.tmpDir, `${key}.json`);
  }

  /** Forgets an interrupted upload: its bytes and its record. */
  async dropPartial(key: string): Promise<void> {
    await removeIfPresent(this.partPath(key));
    await removeIfPresent(this.#metaPath(key));
  }

  /** See `FileStore.uploadOffset`. */
  async offset(target: UploadTarget, limits: FileLimits) {
    const plan = await this.#plan(target, limits);
    const info = await lstatIfPresent(this.partPath(plan.key));
    const offset = info?.isFile ? Math.min(info.size, target.size) : 0;
    const busy = await this.#store.ledger.run(target.user, (acct) => acct.active.has(plan.key));
    return { offset, busy };
  }

  /** See `FileStore.beginUpload`. */
  async begin(target: UploadTarget, options: BeginUploadOptions): Promise<UploadSession> {
    const plan = await this.#plan(target, options.limits);
    const { offset } = options;
    if (offset > target.size) throw new RequestError("bad_request", "offset is past the end");
    const ledger = this.#store.ledger;
    await ledger.run(target.user, (acct) => this.#reserve(acct, plan, options.limits));
    try {
      const file = await this.#openPartial(plan, offset);
      return await DiskUploadSession.open({
        store: this.#store,
        uploads: this,
        plan,
        file,
        offset,
        limits: options.limits,
        hashGate: options.hashGate,
        log: this.#log,
      });
    } catch (e) {
      await ledger.run(target.user, (acct) => this.settle(acct, plan.key));
      throw e;
    }
  }

  async #openPartial(plan: UploadPlan, offset: number): Promise<Deno.FsFile> {
    const partPath = this.partPath(plan.key);
    const metaPath = this.#metaPath(plan.key);
    if (offset > 0) {
      const info = await lstatIfPresent(partPath);
      if (!info?.isFile || info.size < offset) {
        throw new RequestError(
          "changed",
          `the server has ${info?.isFile ? info.size : 0} bytes of this upload, not ${offset}; ` +
            "ask file.offset again",
        );
      }
      const file = await Deno.open(partPath, { read: true, write: true });
      const st = await file.stat();
      if (st.ino !== info.ino) {
        file.close();
        throw new RequestError("forbidden", "the partial upload changed while opening");
      }
      await file.truncate(offset);
      return file;
    }
    await removeIfPresent(partPath);
    const t = plan.target;
    const meta: _PartialMeta = {
      user: t.user,
      path: t.parts.join("/"),
      size: t.size,
      ...("sha256" in t.id ? { sha256: t.id.sha256 } : { tag: t.id.tag }),
      created: Date.now(),
    };
    await Deno.writeTextFile(metaPath, JSON.stringify(meta), { mode: 0o600 });
    return await Deno.open(partPath, { read: true, write: true, createNew: true, mode: 0o600 });
  }

  /** Forgets the record of a committed upload. */
  async committed(key: string): Promise<void> {
    await removeIfPresent(this.#metaPath(key));
  }
}

/** Refuses `plan` if it does not fit next to what `acct` holds and has reserved. */
function _checkQuota(acct: Account, plan: UploadPlan, limits: FileLimits): void {
  const used = usedBytes(acct) - (acct.partials.get(plan.key)?.bytes ?? 0);
  const reserved = reservedBytes(acct);
  if (used + reserved + plan.target.size - plan.replaced > limits.quotaBytes) {
    throw new RequestError(
      "quota",
      `uploading ${_fmtBytes(plan.target.size)} would exceed your quota: ${_fmtBytes(used)} used, ${
        _fmtBytes(reserved)
      } in uploads, quota ${_fmtBytes(limits.quotaBytes)}`,
    );
  }
}
