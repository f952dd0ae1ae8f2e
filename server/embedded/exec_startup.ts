/**
 * What `--exec` checks and prepares on this host before the first run: the
 * exec root and the data dir do not overlap (symlinks followed), the root
 * exists with a safe mode, the sandbox can run `true` (else
 * `ExecSandboxError`, and `serve --exec` refuses to start), and process
 * groups can be signalled with the permissions the server has.
 *
 * @module
 */
import { basename, dirname, join } from "@std/path";
import { ExecSandboxError } from "../exec/errors.ts";
import { checkExecPlacement, execCaps, type ExecConfig } from "../exec/exec_config.ts";
import type { Logger } from "../log.ts";
import { GroupSignaller } from "./exec_group_signaller.ts";
import { ExecSandbox } from "./exec_sandbox.ts";

const _PROBE_TIMEOUT_MS = 15_000;

/** The real path of `path`, or of its nearest existing ancestor with the rest appended. */
async function _realPathOfNearest(path: string): Promise<string> {
  const rest: string[] = [];
  let p = path;
  for (let i = 0; i < 4096; i++) {
    try {
      return join(await Deno.realPath(p), ...rest.reverse());
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound) || dirname(p) === p) throw e;
      rest.push(basename(p));
      p = dirname(p);
    }
  }
  throw new RangeError(`path too deep: ${path}`);
}

/** The uid the server runs as (without needing --allow-sys: the owner of a file it creates). */
async function _serverUid(dir: string): Promise<number> {
  try {
    return Deno.uid() ?? -1;
  } catch {
    const f = await Deno.makeTempFile({ dir, prefix: ".uid-" });
    try {
      return (await Deno.stat(f)).uid ?? -1;
    } finally {
      await Deno.remove(f);
    }
  }
}

/**
 * Checks placement, prepares the exec root and probes the sandbox. Throws
 * `ExecSandboxError` when the sandbox is wanted but cannot run, and a
 * `TypeError` when the exec root and the data dir overlap.
 */
export async function prepareExecHost(
  config: ExecConfig,
  dataDir: string,
  log: Logger,
): Promise<{ sandbox: ExecSandbox; signaller: GroupSignaller }> {
  // Checked with symlinks followed, before anything is created when the
  // permissions let us look at the root's parents (else right after).
  const dataReal = await Deno.realPath(dataDir);
  let rootReal: string | null = null;
  try {
    rootReal = await _realPathOfNearest(config.root);
    checkExecPlacement(dataReal, rootReal, config.readOnlyPaths);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotCapable)) throw e;
  }
  const sandbox = await ExecSandbox.create(config, await _serverUid(dataDir));
  if (rootReal === null) {
    checkExecPlacement(dataReal, await Deno.realPath(config.root), config.readOnlyPaths);
  }
  if (config.sandbox) {
    await _probe(sandbox);
    if (sandbox.sweepsDescriptors) {
      log.info(
        "exec: the server inherited open descriptors from whatever started it; every run " +
          "closes them with perl before its command starts (about 7 ms a run). Start the " +
          "server without them to skip that step",
        { descriptors: sandbox.inheritedFds?.join(",") ?? "unknown" },
      );
    }
  } else {
    log.warn(
      "exec: commands run WITHOUT a sandbox (--exec-unsandboxed): they can read everything " +
        "the server's user can, including the data dir with every account's key, and " +
        "daemons they start may outlive them. Install bubblewrap instead; see docs/exec.md",
    );
  }
  const signaller = new GroupSignaller({ killPath: config.killPath });
  if (signaller.method === "leader-only") {
    log.warn(
      (config.sandbox
        ? "exec: cannot signal process groups; client signals other than SIGKILL will not " +
          "reach sandboxed commands. "
        : "exec: cannot signal process groups; descendants of a command may survive it. ") +
        `Grant --allow-run=${config.killPath},… (or unscoped --allow-run); see docs/exec.md`,
    );
  }
  return { sandbox, signaller };
}

/**
 * Runs `true` in the sandbox once; throws {@linkcode ExecSandboxError}
 * naming what to install or grant when that fails.
 */
async function _probe(sandbox: ExecSandbox): Promise<void> {
  const c = sandbox.config;
  const dir = await sandbox.userDir(".probe");
  const l = sandbox.launch({
    argv: ["true"],
    userDir: dir,
    cwd: dir,
    caps: execCaps(c),
    env: { PATH: "/usr/bin:/bin" },
  });
  const hint = `Install bubblewrap (apt-get install bubblewrap), or start with ` +
    `--exec-unsandboxed to run commands without a sandbox (unsafe: see docs/exec.md)`;
  const reach = sandbox.drop
    ? `Check that uid ${sandbox.drop.uid} can reach ${c.root} (every directory above it ` +
      `searchable by others: chmod o+x). `
    : "";
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(l.program, {
      args: l.args,
      cwd: l.cwd,
      clearEnv: true,
      env: l.env,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new ExecSandboxError(`exec: no sandbox: ${c.envPath} was not found`, { cause: e });
    }
    if (e instanceof Deno.errors.NotCapable) {
      throw new ExecSandboxError(
        `exec: no sandbox: Deno's permissions do not allow running ${c.envPath}; ` +
          `add ${c.envPath} and ${c.bwrapPath} to --allow-run (docs/exec.md)`,
        { cause: e },
      );
    }
    throw new ExecSandboxError(
      `exec: no sandbox: cannot start ${c.bwrapPath} (${(e as Error).message}). ${reach}${hint}`,
      { cause: e },
    );
  }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, _PROBE_TIMEOUT_MS);
  const out = await child.output().finally(() => clearTimeout(timer));
  if (out.code === 127) {
    throw new ExecSandboxError(`exec: no sandbox: ${c.bwrapPath} was not found. ${hint}`);
  }
  if (out.code !== 0) {
    const why = new TextDecoder().decode(out.stderr).trim().slice(0, 500) ||
      `exit ${out.code}`;
    throw new ExecSandboxError(
      `exec: no sandbox: ${c.bwrapPath} could not run a command (${why}). ${reach}${hint}`,
    );
  }
}
