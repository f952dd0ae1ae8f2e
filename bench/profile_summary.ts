/**
 * Prints where the time goes in `.cpuprofile` files: self time by function
 * and by source file.
 *
 *     deno run --allow-read bench/profile_summary.ts [--top N] FILE_OR_DIR...
 *
 * `deno task bench --cpu-prof DIR` profiles the server processes of the
 * scenarios that start one and prints these summaries at the end.
 *
 * @module
 */
import { parseArgs } from "@std/cli/parse-args";
import { join } from "@std/path";
import { formatProfile, summarizeProfile } from "./lib/cpu_profile.ts";

/** The `.cpuprofile` files named by `paths` (directories are listed, oldest first). */
export async function profileFiles(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    if ((await Deno.stat(p)).isDirectory) {
      const found: { path: string; mtime: number }[] = [];
      for await (const e of Deno.readDir(p)) {
        if (!e.isFile || !e.name.endsWith(".cpuprofile")) continue;
        const path = join(p, e.name);
        found.push({ path, mtime: (await Deno.stat(path)).mtime?.getTime() ?? 0 });
      }
      out.push(...found.sort((a, b) => a.mtime - b.mtime).map((f) => f.path));
    } else {
      out.push(p);
    }
  }
  return out;
}

/** Summaries of every profile in `paths`, as text. */
export async function summarizeProfiles(paths: string[], top = 15): Promise<string> {
  const parts: string[] = [];
  for (const file of await profileFiles(paths)) {
    const s = summarizeProfile(JSON.parse(await Deno.readTextFile(file)), top);
    parts.push(formatProfile(file, s));
  }
  return parts.join("\n\n");
}

if (import.meta.main) {
  const flags = parseArgs(Deno.args, { string: ["top"], boolean: ["help"] });
  if (flags.help || flags._.length === 0) {
    console.log("Usage: deno run --allow-read bench/profile_summary.ts [--top N] FILE_OR_DIR...");
    Deno.exit(flags.help ? 0 : 2);
  }
  console.log(await summarizeProfiles(flags._.map(String), Number(flags.top ?? 15)));
}
