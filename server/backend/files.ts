/**
 * Backend interfaces for files (see `mod.ts`): {@linkcode FileStore} (homes,
 * entries, reads from an offset, usage), {@linkcode UploadSession} (one
 * upload in progress) and {@linkcode ShareStore} (share records), bundled as
 * {@linkcode FilesBackend}.
 *
 * Paths crossing this seam are arrays of components under a user's home that
 * the feature has already validated (`server/files/remote_path.ts`): no empty,
 * `.` or `..` component, no `/`, NFC, within the depth and length limits of
 * the protocol. A store may lower the length limit for its own storage
 * ({@linkcode FileStore.maxPathBytes}).
 *
 * Errors are `RequestError`s (`server/errors.ts`) with the protocol's codes:
 * `not_found` (a parent or the entry is missing), `exists`, `bad_request`
 * (not a directory, not a file, not empty), `forbidden` (an entry the store
 * will not follow, e.g. a symlink planted on disk), `quota`, `busy`,
 * `checksum`, `changed`, `disk_full`.
 *
 * Quota: limits ({@linkcode FileLimits}) are decided by the feature and passed
 * with each change; the store applies them inside the user's turn, together
 * with the change, because only there can the check and the change be one
 * step whatever the interleaving (a CAS on the usage counter in a cluster).
 *
 * @module
 */

/** What an entry is (`other`: anything the store will not serve, e.g. a symlink). */
export type EntryType = "file" | "dir" | "other";

/** One entry of a home. */
export interface FileEntry {
  /** Last component (`~` for the home itself). */
  name: string;
  type: EntryType;
  /** Bytes (0 for anything but a file). */
  size: number;
  /** Modification time, ms since the epoch. */
  mtime: number;
  /**
   * Opaque identity of this version of the entry: two entries with the same
   * `version` are the same file (another name of it included); replacing a
   * file's content gives a new `version`. Embedded: device and inode.
   */
  version: string;
}

/** A user's numbers, exact after any interleaving of changes. */
export interface FileUsage {
  /** Bytes of files in the home. */
  files: number;
  /** Bytes held by interrupted uploads kept for resuming. */
  partial: number;
  /** Bytes reserved by uploads running now. */
  reserved: number;
  /** Files and directories in the home (the home itself not counted). */
  entries: number;
}

/** Limits a change must keep; checked by the store together with the change. */
export interface FileLimits {
  /** Bytes a user may hold: files, interrupted uploads and reservations. */
  quotaBytes: number;
  /** Files and directories one home may hold. */
  maxEntries: number;
  /** Uploads per user, running or interrupted (the oldest interrupted go first). */
  maxPartials: number;
}

/** Runs hashing work under the feature's caps (may refuse with `busy`). */
export type HashGate = <T>(work: () => Promise<T>) => Promise<T>;

/**
 * One file opened for reading. Everything read through one reader comes from
 * the same version of the file: a concurrent replace never mixes two versions
 * into one read (files are never written in place).
 */
export interface FileReader extends AsyncDisposable {
  /** The version opened. */
  readonly entry: FileEntry;
  /** The SHA-256 of this version if the store knows it without reading it. */
  readonly knownSha256: string | undefined;
  /**
   * Bytes `[offset, end)` (default: to the end of the file) as a pull stream:
   * nothing is read ahead of what the consumer asks for beyond one chunk.
   * Errors with `internal` if the file turns out shorter than its entry.
   */
  read(offset?: number, end?: number): ReadableStream<Uint8Array>;
  /** Reads the whole file and returns its SHA-256 (call it through a {@linkcode HashGate}). */
  sha256(): Promise<string>;
  /** Tells the store the SHA-256 of this version, computed by the caller over a full read. */
  remember(sha256: string): Promise<void>;
  /** Idempotent. */
  close(): Promise<void>;
}

/** What an upload writes, and how its key is made. */
export interface UploadTarget {
  user: string;
  /** Where the file appears (not empty). */
  parts: string[];
  /** Bytes of the whole file. */
  size: number;
  /** SHA-256 declared up front, or a resume tag chosen by the client; one of them. */
  id: { sha256: string } | { tag: string };
  /** Replace an existing file; without it a file that exists (or appears) is never replaced. */
  overwrite: boolean;
  /** Create missing parent directories when the upload finishes. */
  parents: boolean;
}

/**
 * One upload in progress, holding a reservation of its whole size. Uploads
 * are keyed by (user, path, size, sha256 or tag): the same key resumes from
 * the bytes stored so far, from any connection (and, in a cluster, any node),
 * and at most one session per key runs at once (`busy`).
 *
 * Nothing of an upload is visible under its name before {@linkcode finish}
 * succeeds; then the whole file is, at once. A finished upload survives a
 * restart. Closing without finishing ends the reservation and keeps the bytes
 * written so far for a later resume (they count as `partial` usage).
 */
export interface UploadSession extends AsyncDisposable {
  /** Bytes stored before this session (where {@linkcode write} continues). */
  readonly offset: number;
  /** Appends body bytes; at most `size - offset` in all. `disk_full` drops the upload. */
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Makes the file visible if the SHA-256 of all its bytes (resumed prefix
   * included) is `sha256`: atomically, and never replacing a file unless the
   * target allows it (`exists` otherwise). A mismatch discards the upload
   * (`checksum`: nothing is kept, nothing visible). Resolves with the SHA-256
   * once the file is durable. With {@linkcode BeginUploadOptions.callerHashes}
   * `computed` is the SHA-256 the caller computed over the bytes it wrote.
   */
  finish(sha256: string, computed?: string): Promise<{ sha256: string }>;
  /** Ends the session without finishing (keeps the bytes for a resume). Idempotent. */
  close(): Promise<void>;
}

/** Options of {@linkcode FileStore.beginUpload}. */
export interface BeginUploadOptions {
  /** Resume from this byte; `changed` when the store holds fewer. */
  offset: number;
  limits: FileLimits;
  /** Runs the re-hash of the resumed prefix under the feature's caps. */
  hashGate: HashGate;
  /**
   * The caller hashes the bytes it writes itself (the protocol session
   * already did, PROTOCOL.md §4.7) and passes their SHA-256 to `finish`, so
   * the store does not hash them again. Only with `offset` 0. Default false.
   */
  callerHashes?: boolean;
}

/** Per-user homes. Every change to one user's home is applied one at a time with its accounting. */
export interface FileStore {
  /**
   * Longest path (bytes of the components joined by `/`) this store allows
   * under `user`'s home: the protocol's limit or lower.
   */
  maxPathBytes(user: string): number;
  /** The entry at `parts` (`[]` = the home), or undefined when only the last component is missing. */
  stat(user: string, parts: readonly string[]): Promise<FileEntry | undefined>;
  /**
   * The entries of a directory, in no particular order. Entries removed while
   * listing may be left out. `bad_request` when `parts` is not a directory.
   */
  list(user: string, parts: readonly string[]): AsyncIterable<FileEntry>;
  /** Opens a file for reading (`bad_request` when not a file). */
  open(user: string, parts: readonly string[]): Promise<FileReader>;
  /** Creates a directory (`parents`: and missing ones above it; no error when it exists). */
  mkdir(
    user: string,
    parts: readonly string[],
    options: { parents: boolean; limits: FileLimits },
  ): Promise<void>;
  /** Removes an empty directory. */
  rmdir(user: string, parts: readonly string[]): Promise<void>;
  /** Removes a file; resolves with its size. */
  remove(user: string, parts: readonly string[]): Promise<number>;
  /**
   * Renames `from` to `to` (into `to` when it is a directory); resolves with
   * where the entry is now. Moving an entry onto itself (the same path, or
   * another name of the same file) changes nothing. Every path of a moved
   * tree must stay within the depth and length limits at its new place
   * (`bad_request`). A file replaces another only with `overwrite`.
   */
  rename(
    user: string,
    from: readonly string[],
    to: readonly string[],
    options: { overwrite: boolean },
  ): Promise<string[]>;
  /** The user's numbers now. */
  usage(user: string): Promise<FileUsage>;
  /**
   * Bytes stored of the upload `target` names (0 when none) and whether a
   * session of it is running; refuses early what {@linkcode beginUpload}
   * would refuse (`exists`, `quota`).
   */
  uploadOffset(
    target: UploadTarget,
    limits: FileLimits,
  ): Promise<{ offset: number; busy: boolean }>;
  /**
   * Reserves `target.size` (checked against the limits together with what
   * the user holds and has reserved) and opens the upload at `offset`.
   */
  beginUpload(target: UploadTarget, options: BeginUploadOptions): Promise<UploadSession>;
}

/** A share: a file in its owner's home, pinned by size, SHA-256 and version. */
export interface ShareRecord {
  /** 32 lower-case hex digits (128 random bits). */
  id: string;
  owner: string;
  parts: string[];
  name: string;
  size: number;
  sha256: string;
  /** ms since the epoch. */
  created: number;
}

/** Share records; at most a given number per owner. */
export interface ShareStore {
  /**
   * Returns the owner's record for (parts, sha256, size) if there is one,
   * else creates one. At `max` records, records whose file was removed or
   * replaced are forgotten first; `quota` if all are still live. Durable when
   * it resolves.
   */
  create(
    file: { owner: string; parts: string[]; size: number; sha256: string; version: string },
    max: number,
  ): Promise<ShareRecord>;
  /** The record with this id (a well-formed id), or undefined. */
  resolve(id: string): Promise<ShareRecord | undefined>;
  /** Forgets a record (no error when there is none). */
  forget(id: string): Promise<void>;
}

/** File storage, uploads and shares. */
export interface FilesBackend {
  readonly store: FileStore;
  readonly shares: ShareStore;
}
