/**
 * Drives the real REPL (`parley connect`) for tests: as a plain process with
 * piped input, or inside a pseudo-terminal made by `script`, so readline
 * edits lines, completes on Tab and sees Ctrl-C as a key.
 *
 * @example
 * ```ts ignore
 * await using t = await startTestServer();
 * const key = await t.addUser("ada");
 * await using p = await spawnRepl({ port: t.port, user: "ada", key });
 * await p.waitFor("[#lobby]");
 * const mark = p.mark();
 * await p.write("/jo" + KEYS.tab);
 * await p.waitFor("/join", { since: mark });
 * await p.write(KEYS.ctrlU + "/quit" + KEYS.enter);
 * assertEquals((await p.close()).code, 0);
 * ```
 *
 * @module
 */
import { join } from "@std/path";
import { stripAnsiCode } from "@std/fmt/colors";
import { ROOT } from "../helpers.ts";

/** Keys as a terminal sends them. */
export const KEYS = {
  enter: "\r",
  tab: "\t",
  ctrlC: "\x03",
  ctrlD: "\x04",
  /** Clears the line being typed (readline's kill-line-backwards). */
  ctrlU: "\x15",
  ctrlZ: "\x1a",
  up: "\x1b[A",
  down: "\x1b[B",
} as const;

/** Options for {@linkcode spawnRepl}. */
export interface ReplProcOptions {
  /** Server port (127.0.0.1). */
  port: number;
  /** User to log in as. */
  user: string;
  /** The user's key, hex. */
  key: string;
  /** Run in a pseudo-terminal (default true). */
  pty?: boolean;
  /** HOME for the client (config, history); default: a temp dir removed on close. */
  home?: string;
  /** Terminal width (default 200). */
  cols?: number;
  /** Working directory (default: the current one). */
  cwd?: string;
  /** Plaintext `parley+plain://` (default) or a TLS server's pin. */
  pin?: string;
  /** More environment (e.g. NO_COLOR). */
  env?: Record<string, string>;
  /** More `parley connect` arguments (e.g. `--room`). */
  extra?: string[];
}

/** Where to look for text in {@linkcode ReplProc.waitFor}. */
export interface WaitOptions {
  /** Only output after this {@linkcode ReplProc.mark}. */
  since?: number;
  /** Timeout in ms (default 15 000). */
  ms?: number;
  /** Search standard error instead of standard output. */
  stderr?: boolean;
}

/** A running REPL. */
export interface ReplProc extends AsyncDisposable {
  /** The process id (of `script` on a terminal). */
  pid: number;
  /** Raw output so far (escape sequences included). */
  out(): string;
  /** Standard error so far. */
  err(): string;
  /** Output so far without colour and cursor escapes (`\r` kept). */
  text(): string;
  /** A position in the raw output, for `since`. */
  mark(): number;
  /** Raw output after `mark`. */
  since(mark: number): string;
  /** Types `keys` (see {@linkcode KEYS}). */
  write(keys: string): Promise<void>;
  /**
   * Waits until the output (after `since`, escapes stripped) contains
   * `what`, matches it, or `what()` is true; throws with the output when it
   * does not within the time.
   */
  waitFor(what: string | RegExp | (() => boolean), options?: WaitOptions): Promise<void>;
  /** Resolves with the exit status once the REPL ended by itself. */
  exited: Promise<Deno.CommandStatus>;
  /** Ends input and waits for the exit (killing it after 15 s). Idempotent. */
  close(): Promise<Deno.CommandStatus>;
}

/** The module cache of the caller, kept although HOME changes. */
function _denoDir(): string {
  return Deno.env.get("DENO_DIR") ??
    join(
      Deno.env.get("XDG_CACHE_HOME") ?? join(Deno.env.get("HOME") ?? "/root", ".cache"),
      "deno",
    );
}

/** Starts `parley connect` for `options.user`. */
export async function spawnRepl(options: ReplProcOptions): Promise<ReplProc> {
  const pty = options.pty ?? true;
  const ownHome = options.home === undefined;
  const home = options.home ?? await Deno.makeTempDir({ prefix: "parley-home-" });
  const scheme = options.pin === undefined ? "parley+plain" : "parley";
  const parley = [
    Deno.execPath(),
    "run",
    "--allow-net",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-run",
    join(ROOT, "main.ts"),
    "connect",
    `${scheme}://${options.user}@127.0.0.1:${options.port}`,
    ...(options.extra ?? []),
  ];
  const quoted = parley.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
  const child = new Deno.Command(pty ? "script" : parley[0]!, {
    args: pty
      ? ["-qfec", `stty cols ${options.cols ?? 200} rows 50; exec ${quoted}`, "/dev/null"]
      : parley.slice(1),
    ...(options.cwd ? { cwd: options.cwd } : {}),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: {
      PARLEY_KEY: options.key,
      ...(options.pin ? { PARLEY_PIN: options.pin } : {}),
      HOME: home,
      XDG_CONFIG_HOME: join(home, ".config"),
      TERM: "xterm",
      DENO_DIR: _denoDir(),
      ...(options.env ?? {}),
    },
  }).spawn();
  let text = "";
  let errText = "";
  const pumps = Promise.all([
    (async () => {
      const dec = new TextDecoder();
      for await (const chunk of child.stdout) text += dec.decode(chunk, { stream: true });
    })(),
    (async () => {
      const dec = new TextDecoder();
      for await (const chunk of child.stderr) errText += dec.decode(chunk, { stream: true });
    })(),
  ]);
  const writer = child.stdin.getWriter();
  let closed: Promise<Deno.CommandStatus> | undefined;
  const proc: ReplProc = {
    pid: child.pid,
    out: () => text,
    err: () => errText,
    text: () => stripAnsiCode(text),
    mark: () => text.length,
    since: (mark) => text.slice(mark),
    write: (keys) => writer.write(new TextEncoder().encode(keys)),
    exited: child.status,
    async waitFor(what, o = {}) {
      const ms = o.ms ?? 15_000;
      const end = Date.now() + ms;
      const source = () => stripAnsiCode(o.stderr ? errText : text.slice(o.since ?? 0));
      const ok = typeof what === "function"
        ? what
        : typeof what === "string"
        ? () => source().includes(what)
        : () => what.test(source());
      while (!ok()) {
        if (Date.now() > end) {
          throw new Error(
            `timed out after ${ms} ms waiting for ${String(what)}; output: ${
              JSON.stringify(source().slice(-3000))
            }; stderr: ${JSON.stringify(errText.slice(-2000))}`,
          );
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close() {
      closed ??= (async () => {
        await writer.close().catch(() => {});
        const timer = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch {
            // already gone
          }
        }, 15_000);
        const status = await child.status;
        clearTimeout(timer);
        await pumps;
        if (ownHome) await Deno.remove(home, { recursive: true }).catch(() => {});
        return status;
      })();
      return closed;
    },
    async [Symbol.asyncDispose]() {
      await proc.close();
    },
  };
  return proc;
}
