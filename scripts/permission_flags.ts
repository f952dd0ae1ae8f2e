/**
 * Builds Deno permission flags from `scripts/permissions.json`, the one list
 * shared by `scripts/compile.sh`, `scripts/install.ts`, the run tasks in
 * deno.json and the permission tests.
 *
 * Run it to print the flags, one per line (`--exec`: with the run permission
 * remote exec needs), or with `--tasks` the deno.json run tasks they make:
 * `deno run --allow-read=scripts scripts/permission_flags.ts [--exec | --tasks]`
 *
 * @module
 */
import { parseArgs } from "@std/cli/parse-args";
import { z } from "zod";

const _PATHS = z.union([z.literal(true), z.array(z.string().min(1)).min(1)]);

const _SPEC = z.object({
  $comment: z.string().optional(),
  net: z.boolean(),
  /** `true`: unscoped; a list: only those paths. */
  read: _PATHS,
  write: _PATHS,
  /** The environment variables Parley reads. */
  env: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/)),
  /** The programs a process with remote exec may start (absolute paths). */
  runWithExec: z.array(z.string().startsWith("/")),
}).strict();

/** The shape of `scripts/permissions.json`. */
export type PermissionSpec = z.infer<typeof _SPEC>;

/** Checks `value` against the spec's shape; throws a TypeError naming what is wrong. */
export function parsePermissionSpec(
  value: unknown,
  where = "scripts/permissions.json",
): PermissionSpec {
  const r = _SPEC.safeParse(value);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new TypeError(`${where}: ${i?.path.join(".") || "(top)"}: ${i?.message}`);
  }
  return r.data;
}

/** Reads and checks the spec next to this module. */
export async function readPermissionSpec(): Promise<PermissionSpec> {
  const url = new URL("./permissions.json", import.meta.url);
  const text = await Deno.readTextFile(url);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new TypeError(`scripts/permissions.json: not JSON: ${(e as Error).message}`);
  }
  return parsePermissionSpec(value);
}

/**
 * Turns the spec into `--allow-*` flags; `exec` adds the run permission
 * remote exec needs (no other process gets to start programs).
 */
export function permissionFlags(spec: PermissionSpec, options: { exec?: boolean } = {}): string[] {
  const scoped = (name: string, paths: true | string[]) =>
    paths === true ? `--allow-${name}` : `--allow-${name}=${paths.join(",")}`;
  const flags: string[] = [];
  if (spec.net) flags.push("--allow-net");
  flags.push(scoped("read", spec.read), scoped("write", spec.write));
  if (spec.env.length) flags.push(`--allow-env=${spec.env.join(",")}`);
  if (options.exec && spec.runWithExec.length) {
    flags.push(`--allow-run=${spec.runWithExec.join(",")}`);
  }
  return flags;
}

/**
 * The deno.json tasks that run Parley, as they must read: the same flags as
 * the compiled binary and the installed command.
 */
export function runTasks(spec: PermissionSpec): Record<string, string> {
  const plain = permissionFlags(spec).join(" ");
  const exec = permissionFlags(spec, { exec: true }).join(" ");
  return {
    serve: `deno run ${plain} main.ts serve`,
    "serve-exec": `deno run ${exec} main.ts serve --exec`,
    connect: `deno run ${plain} main.ts connect`,
    parley: `deno run ${plain} main.ts`,
  };
}

if (import.meta.main) {
  const args = parseArgs(Deno.args, { boolean: ["exec", "tasks"] });
  const spec = await readPermissionSpec();
  if (args.tasks) console.log(JSON.stringify(runTasks(spec), null, 2));
  else console.log(permissionFlags(spec, { exec: args.exec }).join("\n"));
}
