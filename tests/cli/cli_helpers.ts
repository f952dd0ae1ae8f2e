/**
 * Runs `parley` client commands as their own processes, as a script would:
 * no terminal, a private config dir, the server and account in the
 * environment.
 *
 * @module
 */
import { parleyProcessArgs } from "../helpers.ts";

/** What a `parley` process printed and how it exited. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Standard output as bytes. */
  bytes: Uint8Array;
}

/** How to run: the environment (PARLEY_SERVER, PARLEY_KEY, …), a working dir, stdin. */
export interface CliOptions {
  env?: Record<string, string>;
  cwd?: string;
  stdin?: string | Uint8Array;
  /** A program and its arguments that run the process (e.g. `setpriv …`), before the runtime. */
  wrapper?: string[];
}

/** Runs `parley ARGS` to its end. */
export async function runCli(options: CliOptions, ...args: string[]): Promise<CliResult> {
  const argv = [...(options.wrapper ?? []), Deno.execPath(), ...parleyProcessArgs(...args)];
  const child = new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    env: { NO_COLOR: "1", XDG_CONFIG_HOME: "/nonexistent", ...options.env },
    ...(options.cwd ? { cwd: options.cwd } : {}),
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(
      typeof options.stdin === "string" ? new TextEncoder().encode(options.stdin) : options.stdin,
    );
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
    bytes: out.stdout,
  };
}

/** The environment that makes `parley` reach `url` as the account with `key`. */
export function cliEnv(
  url: string,
  key: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return { PARLEY_SERVER: url, PARLEY_KEY: key, ...extra };
}

/** A port nobody listens on (picked, then released). */
export function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}
