/**
 * Shared fixtures for the exec tests: a server with exec enabled, a helper
 * that runs a command and collects its output, and a `/proc` scan for the
 * processes left in a session.
 *
 * @module
 */
import { DEFAULT_EXEC_ALLOW } from "../../server/exec/exec_config.ts";
import { concat } from "@std/bytes/concat";
import { type ExecRequest, type ExecResult, RemoteExec } from "../../client/exec/exec_remote.ts";
import { startTestServer, type TestServer } from "../helpers.ts";

/** Commands the tests allow, on top of the defaults. */
export const TEST_ALLOW = [...DEFAULT_EXEC_ALLOW, "sh", "yes", "pwd", "env"];

/** A test server with exec, and its exec root (outside the data dir, removed on dispose). */
export interface ExecTestServer extends TestServer {
  execRoot: string;
}

/**
 * An in-process server with exec enabled (sandboxed unless `exec` says
 * otherwise) and `ada` holding the exec right. The exec root is a fresh
 * temp dir, removed with the server.
 */
export async function startExecServer(
  exec: Record<string, unknown> = {},
): Promise<ExecTestServer> {
  const execRoot = await Deno.makeTempDir({ prefix: "parley-exec-root-" });
  await Deno.chmod(execRoot, 0o711); // as the server makes it: runs as uid 65534 reach their dir
  let t: TestServer;
  try {
    t = await startTestServer({
      features: { exec: { enabled: true, allow: TEST_ALLOW, root: execRoot, ...exec } },
    });
  } catch (e) {
    await Deno.remove(execRoot, { recursive: true });
    throw e;
  }
  await t.addUser("ada", { exec: true });
  return {
    ...t,
    execRoot,
    async [Symbol.asyncDispose]() {
      try {
        await t[Symbol.asyncDispose]();
      } finally {
        await Deno.remove(execRoot, { recursive: true });
      }
    },
  };
}

/** Output and result of one run. */
export interface Collected {
  stdout: string;
  stderr: string;
  result: ExecResult;
}

/** Runs `request`, sends `stdin` (then EOF) and collects everything. */
export async function collect(
  client: Parameters<typeof RemoteExec.start>[0],
  request: ExecRequest,
  stdin?: string | Uint8Array,
): Promise<Collected> {
  const out: Uint8Array[] = [];
  const err: Uint8Array[] = [];
  const run = RemoteExec.start(client, request, {
    stdout: (b) => out.push(b),
    stderr: (b) => err.push(b),
  });
  if (stdin !== undefined) {
    await run.write(typeof stdin === "string" ? new TextEncoder().encode(stdin) : stdin);
  }
  run.endInput();
  const result = await run.done;
  const dec = (parts: Uint8Array[]) => new TextDecoder().decode(concat(parts));
  return { stdout: dec(out), stderr: dec(err), result };
}

export { concat } from "@std/bytes/concat";

/**
 * A unique `sleep` duration (e.g. `1000.123456`): its text marks every host
 * process of one run (bwrap's command line, the shell, the sleep), whatever
 * pid namespace the run has.
 */
export function sleepMarker(): string {
  return `1000.${String(crypto.getRandomValues(new Uint32Array(1))[0]).padStart(10, "0")}`;
}

/** Host pids of live (not zombie) processes whose command line contains `marker` (from `ps`). */
export async function liveWith(marker: string): Promise<number[]> {
  const out = await new Deno.Command("ps", {
    args: ["-e", "-o", "pid=,stat=,args="],
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(out.stdout).split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter(([pid, stat, ...args]) =>
      pid && stat && !/^[ZX]/.test(stat) && args.join(" ").includes(marker)
    )
    .map(([pid]) => Number(pid));
}

/** Waits (bounded) until no live host process carries `marker`; returns what is left. */
export async function waitGoneWith(marker: string, ms = 5_000): Promise<number[]> {
  const until = Date.now() + ms;
  let left = await liveWith(marker);
  while (left.length > 0 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 25));
    left = await liveWith(marker);
  }
  return left;
}

/** Reads from `stream` until `text` has appeared; returns all read so far. */
export async function readUntil(
  next: () => Promise<Uint8Array | null>,
  text: string,
): Promise<string> {
  let seen = "";
  const dec = new TextDecoder();
  while (!seen.includes(text)) {
    const chunk = await next();
    if (chunk === null) throw new Error(`stream ended before ${JSON.stringify(text)}: ${seen}`);
    seen += dec.decode(chunk, { stream: true });
  }
  return seen;
}
