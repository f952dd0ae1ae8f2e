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
import { type FileStore, hashFile, lstatIfPresent, type Resolved } from "./file_store.ts";
import { displayPath } from "./remote_path.ts";
import { formatBytes as _fmtBytes } from "../../protocol/format_bytes.ts";

/** Bytes of the SHA-256 trailer of a tagged upload. */
const _TRAILER = 32;

/** A resume tag: 1–128 characters of `A-Z a-z 0-9 . _ : -`. */
const _TAG = /^[A-Za-z0-9._:-]{1,128}$/;

interface _Plan {
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
  #active = new Set<string>();

  constructor(store: FileStore, config: FileConfig, log: Logger) {
    this.#store = store;
    this.#config = config;
    this.#log = log;
  }

  /** Deletes partial uploads older than the configured age. */
  async sweep(now = Date.now()): Promise<void> {
    const maxAge = this.#config.partialTtlHours * 3600_000;
    for await (const e of Deno.readDir(this.#store.tmpDir)) {
      const p = join(this.#store.tmpDir, e.name);
      const key = e.name.replace(/\.(part|json)$/, "");
      if (this.#active.has(key)) continue;
      const info = await lstatIfPresent(p);
      if (info && now - (info.mtime?.getTime() ?? 0) > maxAge) await _removeIfPresent(p);
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
    const used = await this.#store.usage(user);
    const need = used + this.#store.reserved(user) + size - replaced;
    if (need > this.#config.quotaBytes) {
      throw new RequestError(
        "quota",
        `uploading ${_fmtBytes(size)} would exceed your quota: ${_fmtBytes(used)} used, ${
          _fmtBytes(this.#store.reserved(user))
        } in uploads, quota ${_fmtBytes(this.#config.quotaBytes)}`,
      );
    }
    const id = sha256 ?? `tag\0${tag}`;
    const key = createHash("sha256")
      .update(`${user}\0${parts.join("/")}\0${size}\0${id}`)
      .digest("hex");
    return { parts, size, sha256, tag, overwrite, parents, key, replaced };
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
    return { offset: have, busy: this.#active.has(plan.key) };
  }

  /** `file.put`: receives the bytes from `offset` on and commits the file. */
  async put(ctx: ClientContext, args: Json, stream: MuxStream | undefined): Promise<unknown> {
    if (!stream) throw new RequestError("bad_request", "file.put needs a stream");
    const plan = await this.#plan(ctx, args);
    const offset = intArg(args, "offset", 0);
    if (offset > plan.size) throw new RequestError("bad_request", "offset is past the end");
    if (this.#active.has(plan.key)) {
      throw new RequestError("busy", `an upload of ${displayPath(plan.parts)} is already running`);
    }
    const user = ctx.user.name;
    this.#active.add(plan.key);
    const release = this.#store.reserve(user, plan.size);
    try {
      const partPath = this.#partPath(plan.key);
      const file = await this.#openPartial(user, plan, offset);
      let closed = false;
      let sha256 = "";
      try {
        const hash = await hashFile(file, offset);
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
      await this.#commit(user, plan, partPath);
      this.#log.info("file.put", { user, path: displayPath(plan.parts), size: plan.size });
      return {
        path: displayPath(plan.parts),
        size: plan.size,
        sha256,
        resumedFrom: offset,
      };
    } finally {
      release();
      this.#active.delete(plan.key);
    }
  }

  async #openPartial(user: string, plan: _Plan, offset: number): Promise<Deno.FsFile> {
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
    await this.#limitPartials(user);
    const meta: _PartialMeta = {
      user,
      path: plan.parts.join("/"),
      size: plan.size,
      ...(plan.sha256 === undefined ? { tag: plan.tag! } : { sha256: plan.sha256 }),
      created: Date.now(),
    };
    await Deno.writeTextFile(metaPath, JSON.stringify(meta), { mode: 0o600 });
    return await Deno.open(partPath, { read: true, write: true, createNew: true, mode: 0o600 });
  }

  /** Keeps at most `maxPartialsPerUser - 1` idle partial uploads of `user` before a new one. */
  async #limitPartials(user: string): Promise<void> {
    const mine: { key: string; created: number }[] = [];
    for await (const e of Deno.readDir(this.#store.tmpDir)) {
      if (!e.isFile || !e.name.endsWith(".json")) continue;
      const key = e.name.slice(0, -5);
      if (this.#active.has(key)) continue;
      try {
        const meta = JSON.parse(
          await Deno.readTextFile(join(this.#store.tmpDir, e.name)),
        ) as _PartialMeta;
        if (meta.user === user) mine.push({ key, created: meta.created });
      } catch {
        // An unreadable record is swept by age.
      }
    }
    mine.sort((a, b) => a.created - b.created);
    while (mine.length >= this.#config.maxPartialsPerUser) {
      const { key } = mine.shift()!;
      await this.#dropPartial(key);
    }
  }

  async #commit(user: string, plan: _Plan, partPath: string): Promise<void> {
    if (plan.parents) await this.#store.mkdirs(user, plan.parts.slice(0, -1));
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
    }
    if (plan.overwrite) {
      await Deno.rename(partPath, target.abs);
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
      await Deno.remove(partPath);
    }
    await _removeIfPresent(this.#metaPath(plan.key));
    await syncDir(join(target.abs, ".."));
    await this.#store.adjustUsage(user, plan.size - replaced);
  }
}

function _isDiskFull(e: unknown): boolean {
  return (e as { code?: unknown })?.code === "ENOSPC" ||
    (e instanceof Error && /no space left on device/i.test(e.message));
}
