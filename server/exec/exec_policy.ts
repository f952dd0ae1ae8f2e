/**
 * Exec policy: checks an `exec.run` request against the config and turns it
 * into a concrete command line, working directory and timeout — or refuses
 * it with a clear {@linkcode RequestError}. No shell is involved unless the
 * server runs in shell mode and the client sent a shell line.
 *
 * @module
 */
import { isAbsolute, join, normalize, SEPARATOR } from "@std/path";
import { z } from "zod";
import { RequestError } from "../errors.ts";
import type { Account } from "../backend/accounts.ts";
import type { ExecConfig } from "./exec_config.ts";
import { SANDBOX_WORK_DIR } from "./sandbox.ts";

/** Pattern for the client-chosen run token. */
export const TOKEN_PATTERN: RegExp = /^[A-Za-z0-9_-]{8,64}$/;

const _NO_NUL = (s: string) => !s.includes("\0");

const _RUN_ARGS = z.object({
  token: z.string().regex(TOKEN_PATTERN, "token must be 8–64 of A-Z a-z 0-9 _ -"),
  argv: z.array(z.string().refine(_NO_NUL, "contains NUL")).min(1).max(4096).optional(),
  shell: z.string().min(1).refine(_NO_NUL, "contains NUL").optional(),
  cwd: z.string().max(4096).refine(_NO_NUL, "contains NUL").optional(),
  timeoutMs: z.number().int().min(1).optional(),
}).strict();

/** A validated `exec.run` request. */
export type RunArgs = z.infer<typeof _RUN_ARGS>;

/** A run the policy allowed. */
export interface RunPlan {
  /** Program to run (a bare name is looked up in the exec env's PATH). */
  program: string;
  /** Its arguments. */
  args: string[];
  /** Full command line for the audit log. */
  argv: string[];
  /** The user's exec directory (real path). */
  userDir: string;
  /** Absolute working directory (real path) inside `userDir`. */
  cwd: string;
  /** Timeout in ms. */
  timeoutMs: number;
}

/** Validates raw `exec.run` arguments; throws `bad_request` naming the bad field. */
export function parseRunArgs(raw: unknown): RunArgs {
  const r = _RUN_ARGS.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new RequestError(
      "bad_request",
      `bad exec.run arguments: ${issue?.path.join(".") || "(root)"}: ${
        issue?.message ?? "invalid"
      }`,
    );
  }
  if ((r.data.argv === undefined) === (r.data.shell === undefined)) {
    throw new RequestError("bad_request", "exec.run needs exactly one of argv or shell");
  }
  return r.data;
}

/** Throws unless exec is enabled and `user` has the exec right. */
export function checkAllowed(config: ExecConfig, user: Account): void {
  if (!config.enabled) {
    throw new RequestError(
      "forbidden",
      "remote exec is disabled on this server (start it with `parley serve --exec`)",
    );
  }
  if (!user.exec) {
    throw new RequestError(
      "forbidden",
      `user ${user.name} has no exec right (an admin grants it with \`parley user add ${user.name} --exec\`)`,
    );
  }
}

/**
 * Applies the policy to a validated request; `userDir` is the user's own
 * directory in the exec root, which `args.cwd` is relative to.
 */
export async function planRun(
  config: ExecConfig,
  request: { args: RunArgs; userDir: string },
): Promise<RunPlan> {
  const { args, userDir } = request;
  let argv: string[];
  if (args.shell !== undefined) {
    if (!config.shell) {
      throw new RequestError(
        "forbidden",
        "shell lines are not allowed on this server (it needs `parley serve --exec-shell`); " +
          "send the command as separate arguments instead",
      );
    }
    argv = [config.shellPath, "-c", args.shell];
  } else {
    argv = args.argv!;
    _checkCommand(config, argv[0]!);
  }
  const timeoutMs = args.timeoutMs ?? config.defaultTimeoutMs;
  if (timeoutMs > config.maxTimeoutMs) {
    throw new RequestError(
      "bad_request",
      `timeout ${timeoutMs} ms is above this server's limit of ${config.maxTimeoutMs} ms`,
    );
  }
  const dirReal = await Deno.realPath(userDir);
  await _checkExists(argv[0]!, config.env.PATH ?? "", config.sandbox ? dirReal : null);
  const cwd = await resolveWorkDir(dirReal, args.cwd ?? "");
  return { program: argv[0]!, args: argv.slice(1), argv, userDir: dirReal, cwd, timeoutMs };
}

/** Sandbox paths that are not the host's (besides the work dir): not checked. */
const _PRIVATE_DIRS = ["/tmp", "/proc", "/dev"];

/**
 * Refuses with `not_found` a program that is neither at its absolute path
 * nor in `path`; skipped when Deno's read permission does not allow looking.
 * With a sandbox (`userDir` set) paths are as seen inside it: the work dir
 * is the user's directory, and private mounts are left to the sandbox.
 */
async function _checkExists(program: string, path: string, userDir: string | null): Promise<void> {
  const candidates = isAbsolute(program)
    ? [program]
    : path.split(":").filter((d) => isAbsolute(d)).map((d) => join(d, program));
  for (const c of candidates) {
    let host = c;
    if (userDir !== null) {
      if (_PRIVATE_DIRS.some((d) => _inside(d, c))) return;
      if (_inside(SANDBOX_WORK_DIR, c)) host = join(userDir, c.slice(SANDBOX_WORK_DIR.length));
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

function _checkCommand(config: ExecConfig, cmd: string): void {
  if (cmd === "") throw new RequestError("bad_request", "the command name is empty");
  if (!isAbsolute(cmd) && cmd.includes("/")) {
    throw new RequestError(
      "forbidden",
      `command ${JSON.stringify(cmd)} is a relative path; use a bare name or an absolute path`,
    );
  }
  if (config.shell) return;
  if (!config.allow.includes(cmd)) {
    throw new RequestError(
      "forbidden",
      `command ${JSON.stringify(cmd)} is not in this server's exec allowlist`,
    );
  }
}

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
  if (!_inside(rootReal, joined)) {
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
  if (!_inside(rootReal, real)) throw new RequestError("forbidden", _outside(rel));
  if (!(await Deno.stat(real)).isDirectory) {
    throw new RequestError("bad_request", `cwd ${JSON.stringify(rel)} is not a directory`);
  }
  return real;
}

function _outside(rel: string): string {
  return `cwd ${JSON.stringify(rel)} is outside the exec root (your own directory in it)`;
}

function _inside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(SEPARATOR) ? root : root + SEPARATOR);
}
