/**
 * The argument schemas of the file operations (PROTOCOL.md "Operations:
 * files"), which the server validates requests with. Kept apart from
 * `files.ts` so that the client, which needs only the names and types, does
 * not load zod.
 *
 * @module
 */
import { z } from "zod";
import {
  FILE_CD,
  FILE_GET,
  FILE_LS,
  FILE_MKDIR,
  FILE_MV,
  FILE_OFFSET,
  FILE_PUT,
  FILE_RM,
  FILE_RMDIR,
  FILE_SHARE,
  FILE_STAT,
  SHARE_ID,
  UPLOAD_TAG,
} from "./files.ts";

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
