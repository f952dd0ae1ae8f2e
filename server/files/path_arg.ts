/**
 * Resolves a path argument of a file operation (checked to be a string, if
 * present, by the operation's schema) against the session's directory.
 *
 * @module
 */
import { RequestError } from "../errors.ts";
import { parseRemotePath, PathError } from "./remote_path.ts";

/**
 * The parts of `path` relative to `cwd`; throws `bad_request` as
 * `<op>: <key>: <problem>` for a missing path or one the file feature refuses.
 */
export function pathArg(
  op: string,
  cwd: readonly string[],
  path: string | undefined,
  key = "path",
): string[] {
  if (path === undefined) throw new RequestError("bad_request", `${op}: ${key}: required`);
  try {
    return parseRemotePath(path, cwd);
  } catch (e) {
    if (e instanceof PathError) {
      throw new RequestError("bad_request", `${op}: ${key}: ${e.message}`, { cause: e });
    }
    throw e;
  }
}
