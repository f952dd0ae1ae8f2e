/**
 * The exec feature's settings (the `exec` section of `<data>/config.json`),
 * validated with defaults filled in. `parley serve --exec` sets `enabled`,
 * `--exec-shell` sets `shell`, `--exec-unsandboxed` sets `sandbox: false`.
 *
 * The exec root must lie outside the data dir (and the data dir outside the
 * exec root): a command must never be able to reach keys, homes or logs.
 * By default it is the data dir's sibling `<data>-exec`.
 *
 * @module
 */
import type { ExecCaps } from "../backend/exec.ts";
import { configError, parseConfigSection } from "../config.ts";
import { isAbsolute, resolve, SEPARATOR } from "@std/path";
import { z } from "zod";

/**
 * Commands allowed when the config names none. None of them can change the
 * host: inside the sandbox they can write only the run's own directory, and
 * `date -s` fails without the clock capability (tests/exec/exec_sandbox_test.ts).
 */
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

const _ABS = z.string().refine(isAbsolute, "must be an absolute path");

const _MIB = 1024 * 1024;

const _SCHEMA = z.object({
  /** Exec is off unless this is true. */
  enabled: z.boolean().default(false),
  /** Allow any command and shell lines (`sh -c LINE`) for users with the exec right. */
  shell: z.boolean().default(false),
  /** The shell used for shell lines. */
  shellPath: _ABS.default("/bin/sh"),
  /** Commands users may run: bare names or absolute paths. */
  allow: z.array(_COMMAND).max(10_000).default([...DEFAULT_EXEC_ALLOW]),
  /** Exec root (one directory per user below it); relative paths are relative to the data dir. */
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
  killPath: _ABS.default("/usr/bin/kill"),
  /** Audit log file; relative paths are relative to the data dir. */
  auditLog: z.string().min(1).default("exec-audit.log"),
  /** Size at which the audit log is rotated to `<auditLog>.1` (one old file is kept). */
  auditMaxBytes: z.number().int().min(4096).default(16 * _MIB),
  /** Refused requests logged per user and minute; the rest are counted in one summary line. */
  auditRefusedPerMinute: z.number().int().min(1).max(100_000).default(30),
  /** Run every command in a bubblewrap sandbox (`--exec-unsandboxed` sets false). */
  sandbox: z.boolean().default(true),
  /** The bubblewrap program. */
  bwrapPath: _ABS.default("/usr/bin/bwrap"),
  /** coreutils `env`, which starts bwrap with the client's signals ignored (docs/exec.md). */
  envPath: _ABS.default("/usr/bin/env"),
  /** util-linux `setsid`, which makes bwrap lead its own session and process group. */
  setsidPath: _ABS.default("/usr/bin/setsid"),
  /** util-linux `setpriv`, which drops to `runAsUid:runAsGid` when the server runs as root. */
  setprivPath: _ABS.default("/usr/bin/setpriv"),
  /** Close descriptors the server inherited (beyond stdin/out/err) before a command runs. */
  closeInheritedFds: z.boolean().default(true),
  /** Perl, which closes them inside the sandbox. */
  perlPath: _ABS.default("/usr/bin/perl"),
  /** util-linux `prlimit`, which sets the per-run caps below. */
  prlimitPath: _ABS.default("/usr/bin/prlimit"),
  /** Give commands the host's network (default: none, not even loopback). */
  network: z.boolean().default(false),
  /** Processes (threads included) one run may have at once (RLIMIT_NPROC). */
  maxProcesses: z.number().int().min(1).max(1_000_000).default(64),
  /** Address space of each process of a run in bytes (RLIMIT_AS). */
  maxMemoryBytes: z.number().int().min(16 * _MIB).default(1024 * _MIB),
  /** CPU time of each process of a run in seconds (RLIMIT_CPU). */
  maxCpuSeconds: z.number().int().min(1).default(600),
  /** Largest file a run may write, in bytes (RLIMIT_FSIZE). */
  maxFileBytes: z.number().int().min(1).default(1024 * _MIB),
  /** Size of the run's private /tmp (memory-backed) in bytes. */
  tmpBytes: z.number().int().min(_MIB).default(64 * _MIB),
  /** Extra host paths mounted read-only at the same place inside the sandbox (e.g. /opt/tools). */
  readOnlyPaths: z.array(_ABS).max(100).default([]),
  /** User and group commands run as when the server runs as root. */
  runAsUid: z.number().int().min(1).max(2 ** 32 - 2).default(65534),
  runAsGid: z.number().int().min(1).max(2 ** 32 - 2).default(65534),
}).strict();

/** Validated exec settings as written (paths not resolved): what the policy needs. */
export type ExecSettings = z.infer<typeof _SCHEMA>;

/** Validated exec settings, with `root` and `auditLog` made absolute. */
export type ExecConfig = ExecSettings & { root: string };

/** The caps the settings give every run. */
export function execCaps(
  c: Pick<
    ExecSettings,
    "maxProcesses" | "maxMemoryBytes" | "maxCpuSeconds" | "maxFileBytes" | "tmpBytes"
  >,
): ExecCaps {
  return {
    processes: c.maxProcesses,
    memoryBytes: c.maxMemoryBytes,
    cpuSeconds: c.maxCpuSeconds,
    fileBytes: c.maxFileBytes,
    tmpBytes: c.tmpBytes,
  };
}

/** Whether `path` is `dir` or lies below it (both absolute and normalized). */
export function isWithin(dir: string, path: string): boolean {
  return path === dir || path.startsWith(dir.endsWith(SEPARATOR) ? dir : dir + SEPARATOR);
}

/**
 * Throws a `TypeError` when `root` and the data dir overlap, or a read-only
 * path exposes the data dir. Called with resolved paths at parse time and
 * again with real paths (symlinks followed) when the feature starts.
 */
export function checkExecPlacement(
  dataDir: string,
  root: string,
  readOnlyPaths: readonly string[] = [],
): void {
  const bad = (msg: string) => configError("exec", msg);
  if (isWithin(dataDir, root)) {
    throw bad(
      `root ${root} is inside the data dir ${dataDir}; commands could read keys and homes. ` +
        `Use a directory outside it (the default is the sibling ${dataDir}-exec)`,
    );
  }
  if (isWithin(root, dataDir)) {
    throw bad(`the data dir ${dataDir} is inside the exec root ${root}; use a separate directory`);
  }
  for (const p of readOnlyPaths) {
    if (isWithin(dataDir, p) || isWithin(p, dataDir)) {
      throw bad(`readOnlyPaths entry ${p} would show the data dir ${dataDir} to commands`);
    }
    if (isWithin(root, p) || isWithin(p, root)) {
      throw bad(`readOnlyPaths entry ${p} overlaps the exec root ${root}`);
    }
  }
}

/**
 * Validates a raw `exec` config section without resolving its paths (the
 * policy's view; the backend calls {@linkcode parseExecConfig}); throws a
 * `TypeError` naming the bad field.
 */
export function parseExecSettings(raw: unknown): ExecSettings {
  const c = parseConfigSection(_SCHEMA, raw, "exec");
  if (c.defaultTimeoutMs > c.maxTimeoutMs) {
    throw configError("exec", "defaultTimeoutMs is larger than maxTimeoutMs");
  }
  return c;
}

/**
 * Validates a raw `exec` config section and places its paths: `root` and
 * `auditLog` relative to `dataDir`, checked not to overlap it; throws a
 * `TypeError` naming the bad field.
 */
export function parseExecConfig(raw: unknown, dataDir: string): ExecConfig {
  const c = parseExecSettings(raw);
  const base = resolve(dataDir);
  const root = resolve(base, c.root ?? `${base}-exec`);
  const readOnlyPaths = c.readOnlyPaths.map((p) => resolve(p));
  checkExecPlacement(base, root, readOnlyPaths);
  const auditLog = resolve(base, c.auditLog);
  if (isWithin(root, auditLog)) {
    throw configError("exec", `auditLog ${auditLog} is inside the exec root`);
  }
  return { ...c, root, readOnlyPaths, auditLog };
}
