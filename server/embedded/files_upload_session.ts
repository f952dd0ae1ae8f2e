/**
 * One upload in progress on disk (see `UploadSession` in
 * `../backend/files.ts`): bytes appended to `<key>.part` and hashed as they
 * arrive (the resumed prefix re-hashed first), fsynced, checked against the
 * SHA-256, then put in place inside the user's ledger turn — a hard link when
 * overwriting is not allowed (so a file that appeared meanwhile is never
 * clobbered), a rename otherwise. Closing without finishing ends the
 * reservation; the bytes stay for a resume and count as partial usage.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "@std/path";
import type { FileLimits, HashGate, UploadSession } from "../backend/files.ts";
import { RequestError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { displayPath } from "../files/remote_path.ts";
import { hashFile, syncDir } from "./files_fs.ts";
import type { DiskPartials } from "./files_partials.ts";
import type { DiskStore } from "./files_store.ts";
import { type Account, checkEntries } from "./files_ledger.ts";
import type { UploadPlan } from "./files_uploads.ts";

type _Hash = ReturnType<typeof createHash>;

type _State = "open" | "finishing" | "done";

/** What {@linkcode DiskUploadSession.open} needs. */
export interface DiskUploadSessionInit {
  store: DiskStore;
  partials: DiskPartials;
  plan: UploadPlan;
  /** The partial, open for writing, truncated to `offset`. */
  file: Deno.FsFile;
  offset: number;
  limits: FileLimits;
  hashGate: HashGate;
  /** See `BeginUploadOptions.callerHashes`. */
  callerHashes?: boolean;
  log: Logger;
}

/** An upload writing to its partial file. */
export class DiskUploadSession implements UploadSession {
  readonly offset: number;
  #init: DiskUploadSessionInit;
  #hash: _Hash | undefined;
  #received: number;
  #file: Deno.FsFile | undefined;
  #state: _State = "open";
  #closing: Promise<void> | undefined;

  private constructor(init: DiskUploadSessionInit, hash: _Hash | undefined) {
    this.#init = init;
    this.offset = init.offset;
    this.#received = init.offset;
    this.#file = init.file;
    this.#hash = hash;
  }

  /** Re-hashes the stored prefix (through the gate) and returns a session writing after it. */
  static async open(init: DiskUploadSessionInit): Promise<DiskUploadSession> {
    const { file, offset } = init;
    try {
      const hash = offset === 0
        ? (init.callerHashes ? undefined : createHash("sha256"))
        : await init.hashGate(() => hashFile(file, offset));
      await file.seek(offset, Deno.SeekMode.Start);
      return new DiskUploadSession(init, hash);
    } catch (e) {
      file.close();
      throw e;
    }
  }

  get #name(): string {
    return displayPath(this.#init.plan.target.parts);
  }

  /** Appends body bytes. */
  async write(chunk: Uint8Array): Promise<void> {
    const file = this.#file;
    if (this.#state !== "open" || !file) throw new RequestError("internal", "upload is closed");
    const size = this.#init.plan.target.size;
    if (this.#received + chunk.byteLength > size) {
      throw new RequestError("bad_request", `more bytes than the declared ${size}`);
    }
    this.#hash?.update(chunk);
    this.#received += chunk.byteLength;
    try {
      let off = 0;
      while (off < chunk.byteLength) off += await file.write(chunk.subarray(off));
    } catch (e) {
      throw await this.#diskError(e);
    }
  }

  /** Keeping a partial that filled the disk would keep it full: drop it and say so. */
  async #diskError(e: unknown): Promise<unknown> {
    if (!_isDiskFull(e)) return e;
    this.#closeFile();
    await this.#init.partials.drop(this.#init.plan.key);
    this.#init.log.error("file.put: disk full", {
      user: this.#init.plan.target.user,
      path: this.#name,
    });
    return new RequestError(
      "disk_full",
      "the server's disk is full; nothing was stored. Ask the operator to free space, then retry",
    );
  }

  #closeFile(): void {
    this.#file?.close();
    this.#file = undefined;
  }

  /** Checks the SHA-256 and puts the file in place. */
  async finish(sha256: string, computed?: string): Promise<{ sha256: string }> {
    const file = this.#file;
    if (this.#state !== "open" || !file) throw new RequestError("internal", "upload is closed");
    this.#state = "finishing";
    const { plan, partials, store } = this.#init;
    const size = plan.target.size;
    if (this.#received < size) {
      throw new RequestError(
        "bad_request",
        `the upload ended after ${this.#received} of ${size} bytes; resume it`,
      );
    }
    try {
      await file.syncData();
    } catch (e) {
      throw await this.#diskError(e);
    }
    this.#closeFile();
    const got = this.#hash?.digest("hex") ?? computed;
    if (got === undefined) throw new RequestError("internal", "upload finished without a SHA-256");
    if (got !== sha256) {
      await partials.drop(plan.key);
      throw new RequestError(
        "checksum",
        `the bytes received do not match the SHA-256 declared for ${this.#name}; nothing was stored`,
      );
    }
    await store.ledger.run(plan.target.user, (acct) => this.#commit(acct));
    return { sha256: got };
  }

  /** Inside the user's ledger turn: puts the checked partial in place and books it. */
  async #commit(acct: Account): Promise<void> {
    const { plan, partials, store, limits } = this.#init;
    const { user, parts, overwrite, size } = plan.target;
    const partPath = partials.partPath(plan.key);
    if (plan.target.parents) {
      store.checkNewPath(user, parts);
      await store.mkdirs(user, parts.slice(0, -1), acct, limits.maxEntries);
    }
    const target = await store.resolve(user, parts);
    let replaced = 0;
    if (target.info) {
      if (!target.info.isFile || !overwrite) {
        throw new RequestError(
          "exists",
          `${this.#name} appeared during the upload; nothing was replaced`,
        );
      }
      replaced = target.info.size;
    } else {
      checkEntries(acct, 1, limits.maxEntries);
    }
    const book = () => {
      acct.files += size - replaced;
      if (!target.info) acct.entries++;
      acct.active.delete(plan.key);
      this.#state = "done";
    };
    if (overwrite) {
      await Deno.rename(partPath, target.abs);
      book();
    } else {
      try {
        await Deno.link(partPath, target.abs);
      } catch (e) {
        if (e instanceof Deno.errors.AlreadyExists) {
          throw new RequestError(
            "exists",
            `${this.#name} appeared during the upload; nothing was replaced`,
          );
        }
        throw e;
      }
      book();
      try {
        await Deno.remove(partPath);
      } catch (e) {
        // Still on disk: it counts as an interrupted upload until swept.
        acct.partials.set(plan.key, { bytes: size, touched: Date.now() });
        throw e;
      }
    }
    await partials.committed(plan.key);
    await syncDir(join(target.abs, ".."));
  }

  /** Ends the session; unless finished, the reservation ends and the bytes stay. */
  close(): Promise<void> {
    return this.#closing ??= (async () => {
      this.#closeFile();
      if (this.#state === "done") return;
      this.#state = "done";
      const { store, partials, plan } = this.#init;
      await store.ledger.run(plan.target.user, (acct) => partials.settle(acct, plan.key));
    })();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function _isDiskFull(e: unknown): boolean {
  return (e as { code?: unknown })?.code === "ENOSPC" ||
    (e instanceof Error && /no space left on device/i.test(e.message));
}
