/**
 * Interrupted and running uploads' bytes on disk: `<files>/.parley-tmp/<key>.part`
 * with a record `<key>.json` naming its user, path, size and sha256 or tag.
 * Partials found at start are counted in the ledger; the sweep deletes those
 * idle too long and the oldest beyond the per-user cap.
 *
 * @module
 */
import { join } from "@std/path";
import { RequestError } from "../errors.ts";
import { lstatIfPresent, removeIfPresent } from "./files_fs.ts";
import type { Account } from "./files_ledger.ts";
import type { DiskStore } from "./files_store.ts";
import type { UploadPlan } from "./files_uploads.ts";

interface _PartialMeta {
  user: string;
  path: string;
  size: number;
  sha256?: string;
  tag?: string;
  created: number;
}

/** The partial files of one store. */
export class DiskPartials {
  #store: DiskStore;

  constructor(store: DiskStore) {
    this.#store = store;
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
        await this.drop(key);
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
          await this.drop(key);
          acct.partials.delete(key);
          over--;
        }
      });
    }
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

  /** Where the bytes of upload `key` are. */
  partPath(key: string): string {
    return join(this.#store.tmpDir, `${key}.part`);
  }

  #metaPath(key: string): string {
    return join(this.#store.tmpDir, `${key}.json`);
  }

  /** Forgets an interrupted upload: its bytes and its record. */
  async drop(key: string): Promise<void> {
    await removeIfPresent(this.partPath(key));
    await removeIfPresent(this.#metaPath(key));
  }

  /** Opens the partial of `plan` for writing at `offset` (a new one when 0). */
  async open(plan: UploadPlan, offset: number): Promise<Deno.FsFile> {
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
