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
import { checkExecPlacement, type ExecConfig } from "../exec/exec_config.ts";
import type { Logger } from "../log.ts";
import { GroupSignaller } from "./exec_group_signaller.ts";
import { ExecSandbox } from "./exec_sandbox.ts";

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
    await sandbox.probe();
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
