/**
 * Resolves a path argument of a file operation (checked to be a string, if
 * present, by the operation's schema) against the session's directory.
 *
 * @module
 */
import { RequestError } from "../errors.ts";
import { parseRemotePath, PathError } from "./remote_path.ts";

/** What each path argument is, in words. */
const _NOUNS: Record<string, string> = {
  path: "path",
  from: "path to move",
  to: "destination path",
};

/**
 * The parts of `path` relative to `cwd`; throws `bad_request` for a missing
 * path ("the path is missing") or one the file feature refuses (`cannot use
 * "/etc": absolute paths are not allowed; …`). `_op` names the operation for
 * the callers' sake; users are not shown it.
 */
export function pathArg(
  _op: string,
  cwd: readonly string[],
  path: string | undefined,
  key = "path",
): string[] {
  if (path === undefined) {
    throw new RequestError("bad_request", `the ${_NOUNS[key] ?? key} is missing`);
  }
  try {
    return parseRemotePath(path, cwd);
  } catch (e) {
    if (e instanceof PathError) {
      const shown = JSON.stringify(path);
      const quoted = shown.length > 60 ? `${shown.slice(0, 59)}…` : shown;
      throw new RequestError("bad_request", `cannot use ${quoted}: ${e.message}`, { cause: e });
    }
    throw e;
  }
}
