/**
 * Builds Deno permission flags from `scripts/permissions.json`, the single
 * source of truth shared by `scripts/compile.sh` and the permission tests.
 *
 * Run it to print the flags, one per line:
 * `deno run --allow-read=scripts --allow-env scripts/permission_flags.ts [--exec] [--data DIR] [--config DIR]`
 *
 * @module
 */
import { parseArgs } from "@std/cli/parse-args";
import { join } from "@std/path";

/** The shape of `scripts/permissions.json`. */
export interface PermissionSpec {
  net: boolean;
  read: string[];
  write: string[];
  env: string[];
  /** Whether a build with remote exec adds `--allow-run` (unscoped: see docs/security.md). */
  runWithExec: boolean;
  /** Extra read/write paths of a build with remote exec (the default exec root). */
  execReadWrite?: string[];
}

/** Where the placeholders in the spec point. */
export interface PermissionPlaces {
  /** The server's data dir. Default `./parley-data`. */
  data?: string;
  /** The client config dir (holds config.json). Default from XDG_CONFIG_HOME or HOME. */
  config?: string;
  /** Grant what remote exec needs. Default false. */
  exec?: boolean;
}

/** Reads the spec next to this module. */
export async function readPermissionSpec(): Promise<PermissionSpec> {
  return JSON.parse(
    await Deno.readTextFile(new URL("./permissions.json", import.meta.url)),
  ) as PermissionSpec;
}

/** The client config dir this machine uses (as client/credentials.ts finds it). */
export function defaultConfigDir(): string {
  const xdg = Deno.env.get("XDG_CONFIG_HOME");
  if (xdg) return join(xdg, "parley");
  const home = Deno.env.get("HOME");
  if (!home) throw new TypeError("set HOME or XDG_CONFIG_HOME to locate the config dir");
  return join(home, ".config", "parley");
}

/** Turns the spec into `--allow-*` flags. */
export function permissionFlags(spec: PermissionSpec, places: PermissionPlaces = {}): string[] {
  const fill = (p: string) =>
    p.replace("{data}", places.data ?? "./parley-data")
      .replace("{config}", places.config ?? defaultConfigDir());
  const flags: string[] = [];
  const extra = places.exec ? spec.execReadWrite ?? [] : [];
  const read = [...spec.read, ...extra];
  const write = [...spec.write, ...extra];
  if (spec.net) flags.push("--allow-net");
  if (read.length) flags.push(`--allow-read=${read.map(fill).join(",")}`);
  if (write.length) flags.push(`--allow-write=${write.map(fill).join(",")}`);
  if (spec.env.length) flags.push(`--allow-env=${spec.env.join(",")}`);
  if (places.exec && spec.runWithExec) flags.push("--allow-run");
  return flags;
}

if (import.meta.main) {
  const args = parseArgs(Deno.args, { string: ["data", "config"], boolean: ["exec"] });
  const flags = permissionFlags(await readPermissionSpec(), {
    ...(args.data ? { data: args.data as string } : {}),
    ...(args.config ? { config: args.config as string } : {}),
    exec: Boolean(args.exec),
  });
  console.log(flags.join("\n"));
}
