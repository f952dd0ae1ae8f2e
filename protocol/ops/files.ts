/**
 * The file operations (PROTOCOL.md "Operations: files"): their names, the
 * argument types of each operation and the reply types. Shared by the server
 * and the client. The argument schemas the server validates with (paths are
 * then resolved against the session's directory) are in `files_args.ts`;
 * this file imports zod only as types, so a client never loads it.
 *
 * @module
 */
import type { z } from "zod";
import type { FILE_ARGS } from "./files_args.ts";

/** How many bytes of an upload the server already has (resume). */
export const FILE_OFFSET = "file.offset";
/** Uploads a file on the request's stream. */
export const FILE_PUT = "file.put";
/** Downloads a file (or a shared file) on the request's stream. */
export const FILE_GET = "file.get";
export const FILE_STAT = "file.stat";
/** Lists a directory: NDJSON entries on the request's stream. */
export const FILE_LS = "file.ls";
export const FILE_MKDIR = "file.mkdir";
export const FILE_RMDIR = "file.rmdir";
export const FILE_RM = "file.rm";
export const FILE_MV = "file.mv";
export const FILE_CD = "file.cd";
export const FILE_PWD = "file.pwd";
export const FILE_USAGE = "file.usage";
export const FILE_SHARE = "file.share";

/**
 * The file feature's own error codes (PROTOCOL.md "Operations: files"):
 * `checksum` (bytes do not match the SHA-256), `changed` (the file or partial
 * upload is not what the offset/size/mtime said), `disk_full` (the upload
 * was not stored).
 */
export type FileErrorCode = "checksum" | "changed" | "disk_full";

/** A resume tag: 1–128 characters of `A-Z a-z 0-9 . _ : -`. */
export const UPLOAD_TAG: RegExp = /^[A-Za-z0-9._:-]{1,128}$/;
/** A share id: 32 lower-case hex digits. */
export const SHARE_ID: RegExp = /^[0-9a-f]{32}$/;

/** The arguments a client sends for file operation `Op`. */
export type FileArgs<Op extends keyof typeof FILE_ARGS> = z.input<(typeof FILE_ARGS)[Op]>;
/** The arguments of file operation `Op` as the server sees them after validation. */
export type FileRequest<Op extends keyof typeof FILE_ARGS> = z.output<(typeof FILE_ARGS)[Op]>;

/** One listed entry (`file.ls` stream lines, `file.stat` reply). */
export interface FileEntryInfo {
  /** Name, or a relative path in a recursive listing. */
  name: string;
  type: "file" | "dir" | "other";
  size: number;
  /** Modification time, ms since the epoch. */
  mtime: number;
  sha256?: string;
}

/** Reply of `file.stat` for a path. */
export interface FileStatReply extends FileEntryInfo {
  path: string;
}

/** Reply of `file.ls`. */
export interface FileLsReply {
  path: string;
  count: number;
  /** False when the path named a file (one entry listed). */
  dir: boolean;
}

/** Reply of `file.offset`. */
export interface FileOffsetReply {
  offset: number;
  /** True while another upload of the same file is running. */
  busy: boolean;
}

/** Reply of `file.put`. */
export interface FilePutReply {
  path: string;
  size: number;
  sha256: string;
  resumedFrom: number;
}

/** Reply of `file.get` (`path` absent for a shared file). */
export interface FileGetReply {
  path?: string;
  size: number;
  mtime: number;
  sha256: string;
}

/** Reply of `file.cd` and `file.pwd`. */
export interface FileCwdReply {
  cwd: string;
}

/** Reply of `file.share`. */
export interface FileShareReply {
  id: string;
  name: string;
  size: number;
  sha256: string;
  owner: string;
  path: string;
}
