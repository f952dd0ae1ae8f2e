/**
 * The exec feature's settings (the `exec` section of `<data>/config.json`),
 * validated with defaults filled in. `parley serve --exec` sets `enabled`,
 * `--exec-shell` sets `shell`.
 *
 * @module
 */
import { parseConfigSection } from "../config.ts";
import { isAbsolute, join, resolve } from "@std/path";
import { z } from "zod";

/** Commands allowed when the config names none. */
export const DEFAULT_EXEC_ALLOW: readonly string[] = [
  "true",
  "false",
  "echo",
  "printf",
  "cat",
  "wc",
  "head",
  "tail",
  "ls",
  "date",
  "uname",
  "sleep",
];

const _COMMAND = z.string().min(1).max(4096).refine(
  (s) => !s.includes("\0") && (isAbsolute(s) || !s.includes("/")),
  "a command is a bare name (looked up in the exec PATH) or an absolute path",
);

const _ENV_NAME = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "not a valid variable name");

const _SCHEMA = z.object({
  /** Exec is off unless this is true. */
  enabled: z.boolean().default(false),
  /** Allow any command and shell lines (`sh -c LINE`) for users with the exec right. */
  shell: z.boolean().default(false),
  /** The shell used for shell lines. */
  shellPath: z.string().refine(isAbsolute, "must be an absolute path").default("/bin/sh"),
  /** Commands users may run: bare names or absolute paths. */
  allow: z.array(_COMMAND).max(10_000).default([...DEFAULT_EXEC_ALLOW]),
  /** Working directory root; relative paths are relative to the data dir. */
  root: z.string().min(1).optional(),
  /** The complete environment of every command (nothing else is inherited). */
  env: z.record(_ENV_NAME, z.string().refine((v) => !v.includes("\0"), "contains NUL"))
    .default({ PATH: "/usr/bin:/bin", LANG: "C.UTF-8" }),
  /** Most runs at once per user (all connections together). */
  maxPerUser: z.number().int().min(1).max(10_000).default(4),
  /** Timeout when the client asks for none, in ms. */
  defaultTimeoutMs: z.number().int().min(1).default(60_000),
  /** Largest timeout a client may ask for, in ms. */
  maxTimeoutMs: z.number().int().min(1).default(3_600_000),
  /** The `kill` program used to signal process groups when Deno's run permission is scoped. */
  killPath: z.string().refine(isAbsolute, "must be an absolute path").default("/usr/bin/kill"),
  /** Audit log file; relative paths are relative to the data dir. */
  auditLog: z.string().min(1).default("exec-audit.log"),
}).strict();

/** Validated exec settings, with `root` and `auditLog` made absolute. */
export type ExecConfig = Omit<z.infer<typeof _SCHEMA>, "root"> & { root: string };

/** Validates a raw `exec` config section; throws a `TypeError` naming the bad field. */
export function parseExecConfig(raw: unknown, dataDir: string): ExecConfig {
  const c = parseConfigSection(_SCHEMA, raw, "exec");
  if (c.defaultTimeoutMs > c.maxTimeoutMs) {
    throw new TypeError(
      'invalid "exec" section in config.json: defaultTimeoutMs is larger than maxTimeoutMs',
    );
  }
  const base = resolve(dataDir);
  return {
    ...c,
    root: resolve(base, c.root ?? join(base, "exec-root")),
    auditLog: resolve(base, c.auditLog),
  };
}
