/**
 * Shared files (`file.share`): a record `<files>/shares/<id>.json` points at
 * a file in its owner's home and pins its size and SHA-256. Any signed-in
 * user who knows the id may fetch it with `file.get {shared: id}` or see it
 * with `file.stat {shared: id}`; the file stays in (and counts against) the
 * owner's home, and removing or changing it ends the share.
 *
 * @module
 */
import { encodeHex } from "@std/encoding/hex";
import { join } from "@std/path";
import type { Json } from "../../protocol/messages.ts";
import type { ClientContext } from "../context.ts";
import { RequestError } from "../errors.ts";
import { pathArg } from "./file_args.ts";
import { type FileStore, hashFile } from "./file_store.ts";
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
}

const _ID = /^[0-9a-f]{32}$/;

/** Share records of one store. */
export class Shares {
  #store: FileStore;

  constructor(store: FileStore) {
    this.#store = store;
  }

  /** `file.share {path}`: shares one of your files; returns `{id, name, size, sha256}`. */
  async share(ctx: ClientContext, args: Json): Promise<unknown> {
    const parts = pathArg(ctx, args, "path");
    const r = await this.#store.existing(ctx.user.name, parts);
    const file = await this.#store.openRead(r);
    let sha256: string;
    let size: number;
    try {
      size = (await file.stat()).size;
      sha256 = (await hashFile(file, size)).digest("hex");
    } finally {
      file.close();
    }
    const id = encodeHex(crypto.getRandomValues(new Uint8Array(16)));
    const rec: ShareRecord = {
      id,
      owner: ctx.user.name,
      parts,
      name: parts[parts.length - 1]!,
      size,
      sha256,
      created: Date.now(),
    };
    await Deno.writeTextFile(join(this.#store.sharesDir, `${id}.json`), JSON.stringify(rec), {
      createNew: true,
      mode: 0o600,
    });
    return { id, name: rec.name, size, sha256, owner: rec.owner, path: displayPath(parts) };
  }

  /** Finds a share by id; `not_found` when there is none or its file changed. */
  async lookup(id: unknown): Promise<ShareRecord> {
    if (typeof id !== "string" || !_ID.test(id)) {
      throw new RequestError("bad_request", "a share id is 32 lower-case hex digits");
    }
    let rec: ShareRecord;
    try {
      rec = JSON.parse(
        await Deno.readTextFile(join(this.#store.sharesDir, `${id}.json`)),
      ) as ShareRecord;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new RequestError("not_found", `no shared file ${id}`);
      }
      throw e;
    }
    return rec;
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
