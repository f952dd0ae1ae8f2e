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
import { lstatIfPresent } from "./files_fs.ts";
import type { DiskStore, Resolved } from "./files_store.ts";
import { type Account, checkEntries, reservedBytes, usedBytes } from "./files_ledger.ts";
import type { DiskPartials } from "./files_partials.ts";
import { DiskUploadSession } from "./files_upload_session.ts";

/** An upload as the disk store sees it. */
export interface UploadPlan {
  target: UploadTarget;
  /** Hash of the upload key: names `<key>.part` and `<key>.json`. */
  key: string;
  /** Bytes of the file it replaces (0 when new). */
  replaced: number;
}

/** Starting and resuming uploads: the plan, the reservation, the session. */
export class DiskUploads {
  #store: DiskStore;
  #partials: DiskPartials;
  #log: Logger;

  constructor(store: DiskStore, partials: DiskPartials, log: Logger) {
    this.#store = store;
    this.#partials = partials;
    this.#log = log;
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
          `${displayPath(parts)} already exists; pass --overwrite to replace it`,
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
        await this.#partials.drop(old);
        acct.partials.delete(old);
      }
    }
    acct.partials.delete(plan.key);
    acct.active.set(plan.key, plan.target.size);
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

  /** See `FileStore.uploadOffset`. */
  async offset(target: UploadTarget, limits: FileLimits) {
    const plan = await this.#plan(target, limits);
    const info = await lstatIfPresent(this.#partials.partPath(plan.key));
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
      const file = await this.#partials.open(plan, offset);
      return await DiskUploadSession.open({
        store: this.#store,
        partials: this.#partials,
        plan,
        file,
        offset,
        limits: options.limits,
        hashGate: options.hashGate,
        callerHashes: options.callerHashes === true && offset === 0,
        log: this.#log,
      });
    } catch (e) {
      await ledger.run(target.user, (acct) => this.#partials.settle(acct, plan.key));
      throw e;
    }
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
