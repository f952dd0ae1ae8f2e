/**
 * The file-system half of the exec policy, as the embedded node sees it:
 * a run's working directory resolved inside the user's exec directory with
 * symlinks followed, and its program looked up where the sandbox will look.
 *
 * @module
 */
import { isAbsolute, join, normalize } from "@std/path";
import { RequestError } from "../errors.ts";
import { isWithin } from "../exec/exec_config.ts";
import { SANDBOX_WORK_DIR } from "./exec_sandbox.ts";

/**
 * Resolves `rel` (relative to `root`, the user's exec directory) to an
 * existing directory inside it, following symlinks and checking the result
 * again.
 */
export async function resolveWorkDir(root: string, rel: string): Promise<string> {
  if (isAbsolute(rel)) {
    throw new RequestError(
      "forbidden",
      "cwd must be relative to your exec directory (absolute paths are not allowed)",
    );
  }
  const rootReal = await Deno.realPath(root);
  const joined = normalize(join(rootReal, rel));
  if (!isWithin(rootReal, joined)) {
    throw new RequestError("forbidden", _outside(rel));
  }
  let real: string;
  try {
    real = await Deno.realPath(joined);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new RequestError("not_found", `cwd ${JSON.stringify(rel)} does not exist`);
    }
    throw e;
  }
  if (!isWithin(rootReal, real)) throw new RequestError("forbidden", _outside(rel));
  if (!(await Deno.stat(real)).isDirectory) {
    throw new RequestError("bad_request", `cwd ${JSON.stringify(rel)} is not a directory`);
  }
  return real;
}

function _outside(rel: string): string {
  return `cwd ${JSON.stringify(rel)} is outside the exec root (your own directory in it)`;
}

/** Sandbox paths that are not the host's (besides the work dir): not checked. */
const _PRIVATE_DIRS = ["/tmp", "/proc", "/dev"];

/**
 * Refuses with `not_found` a program that is neither at its absolute path
 * nor in `path`; skipped when Deno's read permission does not allow looking.
 * With a sandbox (`userDir` set) paths are as seen inside it: the work dir
 * is the user's directory, and private mounts are left to the sandbox.
 */
export async function checkProgramExists(
  program: string,
  path: string,
  userDir: string | null,
): Promise<void> {
  const candidates = isAbsolute(program)
    ? [program]
    : path.split(":").filter((d) => isAbsolute(d)).map((d) => join(d, program));
  for (const c of candidates) {
    let host = c;
    if (userDir !== null) {
      if (_PRIVATE_DIRS.some((d) => isWithin(d, c))) return;
      if (isWithin(SANDBOX_WORK_DIR, c)) host = join(userDir, c.slice(SANDBOX_WORK_DIR.length));
    }
    try {
      if ((await Deno.stat(host)).isFile) return;
    } catch (e) {
      if (e instanceof Deno.errors.NotCapable) return;
    }
  }
  throw new RequestError(
    "not_found",
    `command ${JSON.stringify(program)} was not found (looked up in the exec environment's PATH)`,
  );
}
