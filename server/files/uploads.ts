/**
 * Uploads (`file.offset`, `file.put`): bytes go to a temp file
 * `<files>/.parley-tmp/<key>.part`, keyed by (user, target path, size, and
 * either the SHA-256 the client declared up front or a resume tag it chose),
 * are fsynced and checked against the SHA-256 (declared up front, or sent by
 * the client as a 32-byte trailer after the file's bytes, so it can hash
 * while sending), and only then appear under their name (a hard link when
 * overwriting is not allowed, so a file that appeared meanwhile is never
 * clobbered; a rename otherwise). An interrupted upload leaves its temp file,
 * and a later upload with the same key continues from its length.
 *
 * Quota: an upload reserves its whole size in the user's ledger before it is
 * accepted (so pipelined uploads cannot all pass the check), an interrupted
 * upload counts with the bytes it left on disk, and the reservation turns
 * into file bytes at commit, all inside the user's ledger turn. A user has at
 * most `maxPartialsPerUser` uploads, running or interrupted, at once.
 *
 * @module
 */
import { encodeHex } from "@std/encoding/hex";
import { createHash } from "node:crypto";
import { join } from "@std/path";
import type { Json } from "../../protocol/messages.ts";
import type { MuxStream } from "../../protocol/mux_stream.ts";
import type { ClientContext } from "../context.ts";
import { RequestError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { FileConfig } from "./file_config.ts";
import { fileError } from "./file_errors.ts";
import { boolArg, intArg, optStringArg, pathArg, shaArg } from "./file_args.ts";
import { type FileStore, lstatIfPresent, type Resolved } from "./file_store.ts";
import { type Account, checkEntries, reservedBytes, usedBytes } from "./ledger.ts";
import { displayPath } from "./remote_path.ts";
import { formatBytes as _fmtBytes } from "../../protocol/format_bytes.ts";

/** Bytes of the SHA-256 trailer of a tagged upload. */
const _TRAILER = 32;

/** A resume tag: 1–128 characters of `A-Z a-z 0-9 . _ : -`. */
const _TAG = /^[A-Za-z0-9._:-]{1,128}$/;

interface _Plan {
  user: string;
  parts: string[];
  size: number;
  /** Declared up front; undefined when the client sends it as a trailer. */
  sha256: string | undefined;
  /** Resume tag of a trailer upload. */
  tag: string | undefined;
  overwrite: boolean;
  parents: boolean;
  key: string;
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

async function _removeIfPresent(path: string): Promise<void> {
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

/** Upload handling for one server. */
export class Uploads {
  #store: FileStore;
  #config: FileConfig;
  #log: Logger;

  constructor(store: FileStore, config: FileConfig, log: Logger) {
    this.#store = store;
    this.#config = config;
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
        await _removeIfPresent(join(this.#store.tmpDir, name));
        continue;
      }
      if (m[2] === "part") {
        if (!names.has(`${m[1]}.json`)) await _removeIfPresent(this.#partPath(m[1]!));
        continue;
      }
      const key = m[1]!;
      const info = await lstatIfPresent(this.#partPath(key));
      let meta: _PartialMeta | undefined;
      try {
        meta = JSON.parse(await Deno.readTextFile(this.#metaPath(key))) as _PartialMeta;
      } catch {
        meta = undefined;
      }
      if (!info?.isFile || (info.nlink ?? 1) > 1 || typeof meta?.user !== "string") {
        await this.#dropPartial(key);
        continue;
      }
      this.#store.ledger.notePartial(meta.user, key, {
        bytes: info.size,
        touched: info.mtime?.getTime() ?? meta.created ?? 0,
      });
    }
  }

  /**
   * Deletes idle partial uploads older than the configured age, and the
   * oldest beyond the per-user cap.
   */
  async sweep(now = Date.now()): Promise<void> {
    const maxAge = this.#config.partialTtlHours * 3600_000;
    for (const user of this.#store.ledger.usersWithPartials()) {
      await this.#store.ledger.run(user, async (acct) => {
        const idle = [...acct.partials].sort((a, b) => a[1].touched - b[1].touched);
        let over = acct.partials.size + acct.active.size - this.#config.maxPartialsPerUser;
        for (const [key, p] of idle) {
          if (over <= 0 && now - p.touched <= maxAge) continue;
          await this.#dropPartial(key);
          acct.partials.delete(key);
          over--;
        }
      });
    }
  }

  async #plan(ctx: ClientContext, args: Json): Promise<_Plan> {
    const parts = pathArg(ctx, args, "path");
    if (parts.length === 0) throw new RequestError("bad_request", "cannot upload onto ~ itself");
    const size = intArg(args, "size");
    const tag = optStringArg(args, "tag", _TAG);
    const given = (args as Record<string, unknown>).sha256;
    if (tag !== undefined && given !== undefined && given !== null) {
      throw new RequestError("bad_request", "give either sha256 or tag, not both");
    }
    const sha256 = tag === undefined ? shaArg(args, "sha256") : undefined;
    const overwrite = boolArg(args, "overwrite");
    const parents = boolArg(args, "parents");
    if (size > this.#config.maxFileBytes) {
      throw new RequestError(
        "too_large",
        `${_fmtBytes(size)} is over the largest file allowed (${
          _fmtBytes(this.#config.maxFileBytes)
        })`,
      );
    }
    const user = ctx.user.name;
    const target = await this.#resolveTarget(user, parts, parents);
    let replaced = 0;
    if (target.info) {
      if (!target.info.isFile) {
        throw new RequestError("exists", `${displayPath(parts)} exists and is not a file`);
      }
      if (!overwrite) {
        throw new RequestError(
          "exists",
          `${displayPath(parts)} already exists; use overwrite to replace it`,
        );
      }
      replaced = target.info.size;
    }
    const id = sha256 ?? `tag\0${tag}`;
    const key = createHash("sha256")
      .update(`${user}\0${parts.join("/")}\0${size}\0${id}`)
      .digest("hex");
    const plan = { user, parts, size, sha256, tag, overwrite, parents, key, replaced };
    // An early answer for file.offset; the binding check is in #reserve.
    await this.#store.ledger.run(user, (acct) => this.#checkQuota(acct, plan));
    return plan;
  }

  /** Refuses `plan` if it does not fit next to what `acct` holds and has reserved. */
  #checkQuota(acct: Account, plan: _Plan): void {
    const used = usedBytes(acct) - (acct.partials.get(plan.key)?.bytes ?? 0);
    const reserved = reservedBytes(acct);
    if (used + reserved + plan.size - plan.replaced > this.#config.quotaBytes) {
      throw new RequestError(
        "quota",
        `uploading ${_fmtBytes(plan.size)} would exceed your quota: ${_fmtBytes(used)} used, ${
          _fmtBytes(reserved)
        } in uploads, quota ${_fmtBytes(this.#config.quotaBytes)}`,
      );
    }
  }

  /**
   * Inside the user's ledger turn: checks the quota and the number of
   * uploads, then reserves the whole size (an idle partial of the same
   * upload is covered by the reservation from now on).
   */
  async #reserve(acct: Account, plan: _Plan): Promise<void> {
    if (acct.active.has(plan.key)) {
      throw new RequestError("busy", `an upload of ${displayPath(plan.parts)} is already running`);
    }
    this.#checkQuota(acct, plan);
    if (plan.replaced === 0) {
      checkEntries(acct, acct.active.size + 1, this.#config.maxEntriesPerUser);
    }
    if (!acct.partials.has(plan.key)) {
      const max = this.#config.maxPartialsPerUser;
      if (acct.active.size >= max) {
        throw new RequestError("busy", `at most ${max} uploads at once per user; retry later`);
      }
      // Room for this one: drop the oldest interrupted uploads.
      const idle = [...acct.partials].sort((a, b) => a[1].touched - b[1].touched);
      while (acct.partials.size + acct.active.size >= max && idle.length > 0) {
        const [old] = idle.shift()!;
        await this.#dropPartial(old);
        acct.partials.delete(old);
      }
    }
    acct.partials.delete(plan.key);
    acct.active.set(plan.key, plan.size);
  }

  /**
   * Inside the user's ledger turn, after an upload that did not commit: the
   * reservation ends and the partial left on disk (if any) counts as it is.
   */
  async #settle(acct: Account, key: string): Promise<void> {
    acct.active.delete(key);
    const info = await lstatIfPresent(this.#partPath(key));
    if (info?.isFile) {
      acct.partials.set(key, { bytes: info.size, touched: Date.now() });
    } else {
      acct.partials.delete(key);
      await _removeIfPresent(this.#metaPath(key));
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

  #partPath(key: string): string {
    return join(this.#store.tmpDir, `${key}.part`);
  }

  #metaPath(key: string): string {
    return join(this.#store.tmpDir, `${key}.json`);
  }

  /** Forgets an interrupted upload: its bytes and its record. */
  async #dropPartial(key: string): Promise<void> {
    await _removeIfPresent(this.#partPath(key));
    await _removeIfPresent(this.#metaPath(key));
  }

  /** `file.offset`: how many bytes of this upload the server already has. */
  async offset(ctx: ClientContext, args: Json): Promise<unknown> {
    const plan = await this.#plan(ctx, args);
    const info = await lstatIfPresent(this.#partPath(plan.key));
    const have = info?.isFile ? Math.min(info.size, plan.size) : 0;
    const busy = await this.#store.ledger.run(plan.user, (acct) => acct.active.has(plan.key));
    return { offset: have, busy };
  }

  /** `file.put`: receives the bytes from `offset` on and commits the file. */
  async put(ctx: ClientContext, args: Json, stream: MuxStream | undefined): Promise<unknown> {
    if (!stream) throw new RequestError("bad_request", "file.put needs a stream");
    const plan = await this.#plan(ctx, args);
    const offset = intArg(args, "offset", 0);
    if (offset > plan.size) throw new RequestError("bad_request", "offset is past the end");
    const user = ctx.user.name;
    const ledger = this.#store.ledger;
    await ledger.run(user, (acct) => this.#reserve(acct, plan));
    let committed = false;
    try {
      const partPath = this.#partPath(plan.key);
      const file = await this.#openPartial(plan, offset);
      let closed = false;
      let sha256 = "";
      try {
        const hash = await this.#store.hashPrefix(user, file, offset);
        await file.seek(offset, Deno.SeekMode.Start);
        let received = offset;
        const wantTrailer = plan.sha256 === undefined ? _TRAILER : 0;
        const trailer = new Uint8Array(_TRAILER);
        let trailerLength = 0;
        try {
          for (let chunk = await stream.read(); chunk; chunk = await stream.read()) {
            let rest = chunk;
            if (received < plan.size) {
              const take = Math.min(rest.byteLength, plan.size - received);
              const body = take === rest.byteLength ? rest : rest.subarray(0, take);
              rest = rest.subarray(take);
              received += take;
              hash.update(body);
              let off = 0;
              while (off < body.byteLength) off += await file.write(body.subarray(off));
            }
            if (rest.byteLength > 0) {
              if (trailerLength + rest.byteLength > wantTrailer) {
                throw new RequestError(
                  "bad_request",
                  wantTrailer
                    ? `more bytes than the declared ${plan.size} and the ${_TRAILER}-byte SHA-256`
                    : `more bytes than the declared ${plan.size}`,
                );
              }
              trailer.set(rest, trailerLength);
              trailerLength += rest.byteLength;
            }
          }
          if (received === plan.size) await file.syncData();
        } catch (e) {
          if (!_isDiskFull(e)) throw e;
          // Keeping the partial would keep the disk full: drop it and say so.
          file.close();
          closed = true;
          await this.#dropPartial(plan.key);
          this.#log.error("file.put: disk full", { user, path: displayPath(plan.parts) });
          throw fileError(
            "disk_full",
            "the server's disk is full; nothing was stored. Ask the operator to free space, then retry",
          );
        }
        if (received < plan.size) {
          throw new RequestError(
            "bad_request",
            `the upload ended after ${received} of ${plan.size} bytes; resume it`,
          );
        }
        if (trailerLength < wantTrailer) {
          throw new RequestError(
            "bad_request",
            `the upload ended before its ${_TRAILER}-byte SHA-256 trailer; resume it`,
          );
        }
        const expected = plan.sha256 ?? encodeHex(trailer);
        const got = hash.digest("hex");
        sha256 = got;
        if (got !== expected) {
          file.close();
          closed = true;
          await this.#dropPartial(plan.key);
          throw fileError(
            "checksum",
            `the bytes received do not match the SHA-256 declared for ${
              displayPath(plan.parts)
            }; nothing was stored`,
          );
        }
      } finally {
        if (!closed) file.close();
      }
      await ledger.run(
        user,
        (acct) => this.#commit(acct, user, plan, partPath, () => committed = true),
      );
      this.#log.info("file.put", { user, path: displayPath(plan.parts), size: plan.size });
      return {
        path: displayPath(plan.parts),
        size: plan.size,
        sha256,
        resumedFrom: offset,
      };
    } finally {
      if (!committed) await ledger.run(user, (acct) => this.#settle(acct, plan.key));
    }
  }

  async #openPartial(plan: _Plan, offset: number): Promise<Deno.FsFile> {
    const partPath = this.#partPath(plan.key);
    const metaPath = this.#metaPath(plan.key);
    if (offset > 0) {
      const info = await lstatIfPresent(partPath);
      if (!info?.isFile || info.size < offset) {
        throw fileError(
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
    await _removeIfPresent(partPath);
    const meta: _PartialMeta = {
      user: plan.user,
      path: plan.parts.join("/"),
      size: plan.size,
      ...(plan.sha256 === undefined ? { tag: plan.tag! } : { sha256: plan.sha256 }),
      created: Date.now(),
    };
    await Deno.writeTextFile(metaPath, JSON.stringify(meta), { mode: 0o600 });
    return await Deno.open(partPath, { read: true, write: true, createNew: true, mode: 0o600 });
  }

  /**
   * Inside the user's ledger turn: puts the checked partial in place and
   * books it (`booked` is called as soon as the file is in place).
   */
  async #commit(
    acct: Account,
    user: string,
    plan: _Plan,
    partPath: string,
    booked: () => void,
  ): Promise<void> {
    if (plan.parents) {
      this.#store.checkNewPath(user, plan.parts);
      await this.#store.mkdirs(user, plan.parts.slice(0, -1), acct, this.#config.maxEntriesPerUser);
    }
    const target = await this.#store.resolve(user, plan.parts);
    let replaced = 0;
    if (target.info) {
      if (!target.info.isFile || !plan.overwrite) {
        throw new RequestError(
          "exists",
          `${displayPath(plan.parts)} appeared during the upload; nothing was replaced`,
        );
      }
      replaced = target.info.size;
    } else {
      checkEntries(acct, 1, this.#config.maxEntriesPerUser);
    }
    const book = () => {
      acct.files += plan.size - replaced;
      if (!target.info) acct.entries++;
      acct.active.delete(plan.key);
      booked();
    };
    if (plan.overwrite) {
      await Deno.rename(partPath, target.abs);
      book();
    } else {
      try {
        await Deno.link(partPath, target.abs);
      } catch (e) {
        if (e instanceof Deno.errors.AlreadyExists) {
          throw new RequestError(
            "exists",
            `${displayPath(plan.parts)} appeared during the upload; nothing was replaced`,
          );
        }
        throw e;
      }
      book();
      try {
        await Deno.remove(partPath);
      } catch (e) {
        // Still on disk: it counts as an interrupted upload until swept.
        acct.partials.set(plan.key, { bytes: plan.size, touched: Date.now() });
        throw e;
      }
    }
    await _removeIfPresent(this.#metaPath(plan.key));
    await syncDir(join(target.abs, ".."));
  }
}

function _isDiskFull(e: unknown): boolean {
  return (e as { code?: unknown })?.code === "ENOSPC" ||
    (e instanceof Error && /no space left on device/i.test(e.message));
}
