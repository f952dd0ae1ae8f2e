/**
 * Exec policy: checks an `exec.run` request against the settings and turns
 * it into an {@linkcode ExecPlan} (command, working directory relative to
 * the user's exec directory, environment, timeout, caps) — or refuses it
 * with a clear {@linkcode RequestError}. No shell is involved unless the
 * server runs in shell mode and the client sent a shell line. Pure: what
 * the file system says (symlinks, missing directories or programs) is the
 * runner's to check.
 *
 * @module
 */
import { isAbsolute, join, normalize } from "@std/path";
import type { z } from "zod";
import type { Json } from "../../protocol/messages.ts";
import { EXEC_RUN } from "../../protocol/ops/exec.ts";
import { EXEC_ARGS } from "../../protocol/ops/exec_args.ts";
import type { ExecPlan } from "../backend/exec.ts";
import { RequestError } from "../errors.ts";
import { parseArgs } from "../parse_args.ts";
import { execCaps, type ExecSettings, isWithin } from "./exec_config.ts";

/** A validated `exec.run` request. */
export type RunArgs = z.output<(typeof EXEC_ARGS)[typeof EXEC_RUN]>;

/** Validates raw `exec.run` arguments; throws `bad_request` naming the bad field. */
export function parseRunArgs(raw: Json): RunArgs {
  const args = parseArgs(EXEC_RUN, EXEC_ARGS[EXEC_RUN], raw);
  if ((args.argv === undefined) === (args.shell === undefined)) {
    throw new RequestError("bad_request", "exec.run needs exactly one of argv or shell");
  }
  return args;
}

/** Throws unless exec is enabled and `user` has the exec right. */
export function checkAllowed(
  config: Pick<ExecSettings, "enabled">,
  user: { readonly name: string; readonly exec: boolean },
): void {
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

/** A plan, and its command line as the audit log records it. */
export interface PlannedRun {
  plan: ExecPlan;
  /** The command line (a shell line as `[shellPath, "-c", LINE]`). */
  argv: string[];
}

/** What {@linkcode planRun} reads of a request. */
export type RunRequest = Pick<RunArgs, "argv" | "shell" | "cwd" | "timeoutMs">;

/**
 * Applies the policy to a validated request by `user`. The node that runs
 * a routed request applies it again with its own settings
 * (`server/nats/exec_service.ts`).
 */
export function planRun(
  settings: ExecSettings,
  request: { user: string; args: RunRequest },
): PlannedRun {
  const { args, user } = request;
  let command: ExecPlan["command"];
  let argv: string[];
  if (args.shell !== undefined) {
    if (!settings.shell) {
      throw new RequestError(
        "forbidden",
        "shell lines are not allowed on this server (it needs `parley serve --exec-shell`); " +
          "send the command as separate arguments instead",
      );
    }
    command = { shell: args.shell };
    argv = [settings.shellPath, "-c", args.shell];
  } else {
    argv = args.argv!;
    _checkCommand(settings, argv[0]!);
    command = { argv };
  }
  const timeoutMs = args.timeoutMs ?? settings.defaultTimeoutMs;
  if (timeoutMs > settings.maxTimeoutMs) {
    throw new RequestError(
      "bad_request",
      `timeout ${timeoutMs} ms is above this server's limit of ${settings.maxTimeoutMs} ms`,
    );
  }
  const cwd = checkWorkDir(args.cwd ?? "");
  return {
    plan: { user, command, cwd, env: settings.env, timeoutMs, caps: execCaps(settings) },
    argv,
  };
}

/**
 * Plans a request for another node (cluster mode): only what does not
 * depend on a node's settings is checked here — the command's form and the
 * cwd. The node that runs it applies its own allow-list, shell mode and
 * timeout limit, environment and caps ({@linkcode ExecPlan.routed}).
 */
export function planRouted(
  settings: ExecSettings,
  request: { user: string; addr: string; args: RunRequest },
): PlannedRun {
  const { args, user, addr } = request;
  let command: ExecPlan["command"];
  let argv: string[];
  if (args.shell !== undefined) {
    command = { shell: args.shell };
    argv = ["sh", "-c", args.shell];
  } else {
    argv = args.argv!;
    _checkForm(argv[0]!);
    command = { argv };
  }
  const cwd = checkWorkDir(args.cwd ?? "");
  return {
    plan: {
      user,
      command,
      cwd,
      env: {},
      timeoutMs: args.timeoutMs ?? settings.defaultTimeoutMs,
      caps: execCaps(settings),
      routed: { addr, ...(args.timeoutMs !== undefined ? { timeoutMs: args.timeoutMs } : {}) },
    },
    argv,
  };
}

function _checkForm(cmd: string): void {
  if (cmd === "") throw new RequestError("bad_request", "the command name is empty");
  if (!isAbsolute(cmd) && cmd.includes("/")) {
    throw new RequestError(
      "forbidden",
      `command ${JSON.stringify(cmd)} is a relative path; use a bare name or an absolute path`,
    );
  }
}

function _checkCommand(settings: ExecSettings, cmd: string): void {
  _checkForm(cmd);
  if (settings.shell) return;
  if (!settings.allow.includes(cmd)) {
    throw new RequestError(
      "forbidden",
      `command ${JSON.stringify(cmd)} is not in this server's exec allowlist`,
    );
  }
}

/**
 * Checks `rel` by its text: relative, and not leading out of the user's
 * directory with `..`. Returns it unchanged; the runner resolves it.
 */
export function checkWorkDir(rel: string): string {
  if (isAbsolute(rel)) {
    throw new RequestError(
      "forbidden",
      "cwd must be relative to your exec directory (absolute paths are not allowed)",
    );
  }
  const base = "/exec-dir";
  if (!isWithin(base, normalize(join(base, rel)))) {
    throw new RequestError(
      "forbidden",
      `cwd ${JSON.stringify(rel)} is outside the exec root (your own directory in it)`,
    );
  }
  return rel;
}
