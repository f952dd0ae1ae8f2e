/**
 * `deno task install`: puts a `parley` command on the user's PATH without
 * compiling. It writes a small POSIX shell launcher into a bin dir (default
 * `~/.local/bin`) that runs this checkout's `main.ts` with the absolute path
 * of the Deno that runs the install (`npx -y deno@…` leaves `deno` off PATH)
 * and the permissions of `scripts/permissions.json`: the run permission only
 * for `parley serve`, which needs it when remote exec is on (docs/security.md,
 * "Permissions").
 *
 * @module
 */
import { parseArgs } from "@std/cli/parse-args";
import { dirname, fromFileUrl, join, resolve } from "@std/path";
import { permissionFlags, readPermissionSpec } from "./permission_flags.ts";

const HELP = `Usage: deno task install [OPTIONS]

Installs the \`parley\` command: a launcher script that runs this checkout's
main.ts with this Deno and the permissions in scripts/permissions.json.

Options:
  --bin-dir DIR   where to put it (default: $PARLEY_BIN_DIR, else ~/.local/bin);
                  created if missing
  --force         replace a \`parley\` there that this script did not write
  -h, --help      show this help

Run it again after moving this directory or upgrading Deno.`;

/** The line that marks a launcher this script wrote (so a reinstall may replace it). */
export const LAUNCHER_MARK =
  "# parley launcher written by `deno task install` (scripts/install.ts)";

/** What the launcher runs. */
export interface LauncherPlan {
  /** Absolute path of the Deno binary. */
  deno: string;
  /** Deno's version, for the `npx` fallback when that binary is gone. */
  denoVersion: string;
  /** The checkout (holds deno.json and main.ts). */
  root: string;
  /** Permission flags of every command. */
  flags: string[];
  /** Extra flags of `parley serve` (the run permission remote exec needs). */
  serveFlags: string[];
}

/** Quotes `s` for a POSIX shell. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=,@%+-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The launcher script's text. */
export function launcherScript(plan: LauncherPlan): string {
  const q = shellQuote;
  const common = `--quiet --no-prompt --config "$root/deno.json" ${plan.flags.map(q).join(" ")}`;
  const serve = plan.serveFlags.map(q).join(" ");
  const npx = `npx -y deno@${plan.denoVersion}`;
  return `#!/bin/sh
${LAUNCHER_MARK}
# Runs main.ts in the directory below with Deno ${plan.denoVersion} and the permissions of
# scripts/permissions.json (docs/security.md, "Permissions"). After moving that directory run
# \`${npx} task install\` there again.
root=${q(plan.root)}
deno=${q(plan.deno)}
_run() {
  if [ -x "$deno" ]; then exec "$deno" run "$@"; fi
  # That Deno is gone (npm's cache was cleared?): fetch the same version through npx.
  if command -v npx >/dev/null 2>&1; then exec ${npx} run "$@"; fi
  echo "parley: $deno is gone and npx is not on PATH; install Node.js, then run" >&2
  echo "  ${npx} task install   (in $root)" >&2
  exit 127
}
if [ "\${1-}" = serve ]; then
  _run ${common} ${serve} "$root/main.ts" "$@"
fi
_run ${common} "$root/main.ts" "$@"
`;
}

/** Where the launcher goes: `--bin-dir`, else PARLEY_BIN_DIR, else ~/.local/bin. */
export function binDirFrom(given: string | undefined): string {
  if (given) return resolve(given);
  const env = Deno.env.get("PARLEY_BIN_DIR");
  if (env) return resolve(env);
  const home = Deno.env.get("HOME");
  if (!home) throw new TypeError("HOME is not set: pass --bin-dir DIR");
  return join(home, ".local", "bin");
}

/** Whether `dir` is one of PATH's entries. */
function _onPath(dir: string, path: string[]): boolean {
  return path.some((p) => p !== "" && resolve(p) === dir);
}

/** A `parley` earlier on PATH than `dir`, which would run instead of the launcher. */
async function _shadowing(dir: string, path: string[]): Promise<string | undefined> {
  for (const p of path) {
    if (p === "") continue;
    if (resolve(p) === dir) return undefined;
    const file = join(resolve(p), "parley");
    try {
      const st = await Deno.stat(file);
      if (st.isFile && (st.mode ?? 0) & 0o111) return file;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound || e instanceof Deno.errors.PermissionDenied)) {
        throw e;
      }
    }
  }
  return undefined;
}

/** Writes the launcher into `binDir`; returns its path. Refuses a foreign `parley` unless `force`. */
export async function installLauncher(
  binDir: string,
  plan: LauncherPlan,
  force = false,
): Promise<string> {
  await Deno.mkdir(binDir, { recursive: true });
  const target = join(binDir, "parley");
  let old: string | undefined;
  try {
    old = await Deno.readTextFile(target);
  } catch (e) {
    // Something we cannot read as our launcher (a directory, a binary we may not read) is foreign.
    old = e instanceof Deno.errors.NotFound ? undefined : "";
  }
  if (old !== undefined && !old.includes(LAUNCHER_MARK) && !force) {
    throw new TypeError(
      `${target} exists and was not written by this script; move it away, or pass --force to ` +
        "replace it",
    );
  }
  const tmp = await Deno.makeTempFile({ dir: binDir, prefix: ".parley-" });
  try {
    await Deno.writeTextFile(tmp, launcherScript(plan));
    await Deno.chmod(tmp, 0o755);
    await Deno.rename(tmp, target);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  return target;
}

async function _main(args: string[]): Promise<number> {
  let bad: string | undefined;
  const opts = parseArgs(args, {
    string: ["bin-dir"],
    boolean: ["force", "help"],
    alias: { h: "help" },
    unknown: (a: string) => {
      bad ??= a;
      return false;
    },
  });
  if (opts.help) {
    console.log(HELP);
    return 0;
  }
  if (bad !== undefined) {
    console.error(`install: unknown option ${bad}`);
    console.error("Usage: deno task install [--bin-dir DIR] [--force]   (--help for more)");
    return 2;
  }
  if (Deno.build.os === "windows") {
    console.error(
      "install: the launcher is a POSIX shell script; on Windows run `deno task parley`",
    );
    return 1;
  }
  try {
    const spec = await readPermissionSpec();
    const root = dirname(dirname(fromFileUrl(import.meta.url)));
    const flags = permissionFlags(spec);
    const plan: LauncherPlan = {
      deno: Deno.execPath(),
      denoVersion: Deno.version.deno,
      root,
      flags,
      serveFlags: permissionFlags(spec, { exec: true }).filter((f) => !flags.includes(f)),
    };
    const binDir = binDirFrom(opts["bin-dir"]);
    const target = await installLauncher(binDir, plan, opts.force);
    console.log(
      `Installed ${target}: runs ${join(root, "main.ts")} with Deno ${plan.denoVersion}.`,
    );
    const path = (Deno.env.get("PATH") ?? "").split(":");
    if (!_onPath(binDir, path)) {
      console.log(
        `${binDir} is not on your PATH. Add it (e.g. in ~/.profile or ~/.bashrc) and in this shell:`,
      );
      console.log(`  export PATH=${shellQuote(binDir)}:"$PATH"`);
    } else {
      const other = await _shadowing(binDir, path);
      if (other) {
        console.log(
          `Note: ${other} comes first on PATH and runs instead; remove it or reorder PATH.`,
        );
      }
    }
    console.log("Then try: parley --help");
    return 0;
  } catch (e) {
    if (e instanceof TypeError || e instanceof Deno.errors.PermissionDenied) {
      console.error(`install: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await _main(Deno.args));
