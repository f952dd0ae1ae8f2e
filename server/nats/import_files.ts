/**
 * `parley cluster import`, files: every home of the data dir copied into the
 * cluster's file store through the files backend (directories, then each
 * file as one upload of its exact bytes, resumed where an interrupted import
 * left it), modification times carried over, and shares created again for
 * the same files (a share store hands out its own ids: the old-to-new map is
 * returned so chat messages pointing at a share are rewritten).
 *
 * Modification times have no setter in the `FileStore` interface (every
 * change there is "now"): they are written into the cluster's path index
 * entry afterwards, with a compare-and-set on the entry as uploaded.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import type { FileEntry, FileLimits, FilesBackend } from "../backend/files.ts";
import { RequestError } from "../errors.ts";
import { casPublish } from "./files_cas.ts";
import { FS_BUCKET, getJson, type IndexEntry, indexKey } from "./files_ctx.ts";

/** What the copy may hold: everything the data dir holds, whatever the cluster's quotas say. */
const _NO_LIMITS: FileLimits = {
  quotaBytes: Number.MAX_SAFE_INTEGER,
  maxEntries: Number.MAX_SAFE_INTEGER,
  maxPartials: 1_000_000,
};

/** One file copied (or found already there), for the verification. */
export interface CopiedFile {
  user: string;
  parts: string[];
  size: number;
  sha256: string;
}

/** What the file copy did. */
export interface FilesResult {
  /** Files uploaded now. */
  copied: number;
  /** Files already in the cluster with the same bytes (an earlier run). */
  present: number;
  /** Paths the cluster holds with other content (kept: `--merge`). */
  conflicts: string[];
  dirs: number;
  /** Bytes uploaded now. */
  bytes: number;
  /** Entries that are neither file nor directory (e.g. symlinks), not copied. */
  skipped: string[];
  /** Every file now equal in both stores (copied or present). */
  files: CopiedFile[];
  /** Share ids: data dir's → cluster's. */
  shares: Map<string, string>;
  /** Shares whose file is gone or changed (not carried over). */
  deadShares: number;
}

/** Where the file copy reads and writes. */
export interface FilesCopy {
  nc: NatsConnection;
  src: FilesBackend;
  dst: FilesBackend;
  users: string[];
  /** Share ids of the data dir (read from its share directory). */
  shareIds: string[];
  progress(line: string): void;
}

/** Copies every home of `users`, then the shares. */
export async function copyFiles(c: FilesCopy): Promise<FilesResult> {
  const js = jetstream(c.nc);
  const kv = await new Kvm(js).open(FS_BUCKET);
  const r: FilesResult = {
    copied: 0,
    present: 0,
    conflicts: [],
    dirs: 0,
    bytes: 0,
    skipped: [],
    files: [],
    shares: new Map(),
    deadShares: 0,
  };
  let lastReport = Date.now();
  const report = (force = false) => {
    if (!force && Date.now() - lastReport < 2_000) return;
    lastReport = Date.now();
    c.progress(
      `files: ${r.copied + r.present} files (${_mib(r.bytes)} uploaded), ${r.dirs} directories`,
    );
  };
  const setMtime = async (user: string, parts: string[], mtime: number, version: string) => {
    const key = indexKey(user, parts);
    for (let attempt = 0; attempt < 5; attempt++) {
      const e = await getJson<IndexEntry>(kv, key);
      if (!e || e.value.v !== version || e.value.mtime === mtime) return;
      // The same write as the file store's own (atomic at R3 on 2.9.10); undefined: lost a race.
      const value = JSON.stringify({ ...e.value, mtime });
      if (await casPublish({ js }, `$KV.${FS_BUCKET}.${key}`, value, e.rev) !== undefined) return;
    }
  };
  const walk = async (user: string, parts: string[]): Promise<void> => {
    const entries: FileEntry[] = [];
    for await (const e of c.src.store.list(user, parts)) entries.push(e);
    entries.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    for (const e of entries) {
      const p = [...parts, e.name];
      if (e.type === "dir") {
        await c.dst.store.mkdir(user, p, { parents: true, limits: _NO_LIMITS });
        r.dirs++;
        await walk(user, p);
        const made = await c.dst.store.stat(user, p);
        if (made?.type === "dir") await setMtime(user, p, e.mtime, made.version);
      } else if (e.type === "file") {
        await copyOne(user, p, e);
        report();
      } else {
        r.skipped.push(`${user}:${p.join("/")}`);
      }
    }
  };
  const copyOne = async (user: string, parts: string[], e: FileEntry): Promise<void> => {
    await using reader = await c.src.store.open(user, parts);
    const sha256 = reader.knownSha256 ?? await reader.sha256();
    const size = reader.entry.size;
    const there = await c.dst.store.stat(user, parts);
    if (there) {
      if (there.type === "file" && there.size === size) {
        await using theirs = await c.dst.store.open(user, parts);
        if ((theirs.knownSha256 ?? await theirs.sha256()) === sha256) {
          r.present++;
          r.files.push({ user, parts, size, sha256 });
          await setMtime(user, parts, e.mtime, there.version);
          return;
        }
      }
      r.conflicts.push(`${user}:${parts.join("/")}`);
      return;
    }
    const target = {
      user,
      parts,
      size,
      id: { sha256 },
      overwrite: false,
      parents: true,
    };
    const { offset, busy } = await c.dst.store.uploadOffset(target, _NO_LIMITS);
    if (busy) {
      throw new RequestError(
        "busy",
        `the upload of ${user}:${parts.join("/")} is still held by an interrupted run ` +
          "(its lease ends within 30 s); run the import again in a minute",
      );
    }
    await using session = await c.dst.store.beginUpload(target, {
      offset,
      limits: _NO_LIMITS,
      hashGate: (work) => work(),
    });
    for await (const chunk of reader.read(session.offset)) {
      await session.write(chunk);
      r.bytes += chunk.byteLength;
    }
    await session.finish(sha256);
    const made = await c.dst.store.stat(user, parts);
    if (made?.type === "file") await setMtime(user, parts, e.mtime, made.version);
    r.copied++;
    r.files.push({ user, parts, size, sha256 });
  };

  for (const user of c.users) await walk(user, []);
  report(true);

  for (const id of c.shareIds) {
    const rec = await c.src.shares.resolve(id);
    if (!rec) continue;
    const src = await c.src.store.stat(rec.owner, rec.parts).catch(() => undefined);
    const copied = r.files.find((f) =>
      f.user === rec.owner && f.parts.join("/") === rec.parts.join("/")
    );
    if (src?.type !== "file" || !copied || copied.sha256 !== rec.sha256) {
      r.deadShares++;
      continue;
    }
    const there = await c.dst.store.stat(rec.owner, rec.parts);
    if (there?.type !== "file") {
      r.deadShares++;
      continue;
    }
    const made = await c.dst.shares.create({
      owner: rec.owner,
      parts: rec.parts,
      size: rec.size,
      sha256: rec.sha256,
      version: there.version,
    }, 1_000_000);
    r.shares.set(id, made.id);
  }
  if (c.shareIds.length > 0) {
    c.progress(`shares: ${r.shares.size} carried over, ${r.deadShares} of removed files dropped`);
  }
  return r;
}

/** The SHA-256 of a file in `files`, read in full (not the stored checksum). */
export async function readSha256(
  files: FilesBackend,
  user: string,
  parts: string[],
): Promise<{ sha256: string; size: number }> {
  await using reader = await files.store.open(user, parts);
  const h = createHash("sha256");
  let size = 0;
  for await (const chunk of reader.read(0)) {
    h.update(chunk);
    size += chunk.byteLength;
  }
  return { sha256: h.digest("hex"), size };
}

function _mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}
