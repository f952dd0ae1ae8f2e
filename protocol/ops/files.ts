/**
 * The file operations (PROTOCOL.md "Operations: files"): their names, the
 * schema of each operation's arguments and the reply types. Shared by the
 * server, which validates arguments with these schemas (paths are then
 * resolved against the session's directory), and the client.
 *
 * @module
 */
import { z } from "zod";

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

const _PATH = z.string({
  error: (issue) => issue.input === undefined ? "required" : "a path must be a string",
});
const _COUNT_MSG = "must be a non-negative integer";
const _COUNT = z.number({ error: _COUNT_MSG }).int({ error: _COUNT_MSG })
  .min(0, { error: _COUNT_MSG }).max(Number.MAX_SAFE_INTEGER, { error: _COUNT_MSG });
/** An optional flag; null counts as absent (false). */
const _FLAG = z.boolean({ error: "must be true or false" }).nullish();
const _SHA = z.string({ error: "must be 64 lower-case hex digits (SHA-256)" })
  .regex(/^[0-9a-f]{64}$/, "must be 64 lower-case hex digits (SHA-256)");
const _SHARED = z.string({ error: "a share id is 32 lower-case hex digits" })
  .regex(SHARE_ID, "a share id is 32 lower-case hex digits").nullish();

const _UPLOAD = {
  path: _PATH,
  size: _COUNT,
  tag: z.string().regex(UPLOAD_TAG, "1–128 of A-Z a-z 0-9 . _ : -").nullish(),
  sha256: _SHA.nullish(),
  overwrite: _FLAG,
  parents: _FLAG,
};

/** An upload names its content by exactly one of `sha256` and `tag`. */
function _oneId<
  S extends z.ZodType<{ tag?: string | null | undefined; sha256?: string | null | undefined }>,
>(schema: S): S {
  return schema
    .refine((a) => a.tag == null || a.sha256 == null, "give either sha256 or tag, not both")
    .refine((a) => a.tag != null || a.sha256 != null, {
      error: "must be 64 lower-case hex digits (SHA-256)",
      path: ["sha256"],
    });
}

/** Argument schema of each file operation (`file.pwd` and `file.usage` take none). */
export const FILE_ARGS = {
  [FILE_OFFSET]: _oneId(z.object(_UPLOAD)),
  [FILE_PUT]: _oneId(z.object({ ..._UPLOAD, offset: _COUNT.nullish() })),
  [FILE_GET]: z.object({
    path: _PATH.optional(),
    shared: _SHARED,
    offset: _COUNT.nullish(),
    size: _COUNT.nullish(),
    mtime: _COUNT.nullish(),
  }),
  [FILE_STAT]: z.object({ path: _PATH.optional(), shared: _SHARED, sha256: _FLAG }),
  [FILE_LS]: z.object({ path: _PATH.optional(), sha256: _FLAG, recursive: _FLAG }),
  [FILE_MKDIR]: z.object({ path: _PATH, parents: _FLAG }),
  [FILE_RMDIR]: z.object({ path: _PATH }),
  [FILE_RM]: z.object({ path: _PATH }),
  [FILE_MV]: z.object({ from: _PATH, to: _PATH, overwrite: _FLAG }),
  [FILE_CD]: z.object({ path: _PATH.optional() }),
  [FILE_SHARE]: z.object({ path: _PATH }),
} as const;

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
