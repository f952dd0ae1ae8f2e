/**
 * Test fixtures: servers on port 0 in temp directories (in-process or as a
 * real `parley serve` subprocess), accounts and connected clients.
 * Everything returned is disposable with `await using`.
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import { decodeHex } from "@std/encoding/hex";
import { fromFileUrl, join } from "@std/path";
import { ParleyServer, type StartOptions } from "../server/server.ts";
import { type ConfigOverrides, loadConfig } from "../server/config.ts";
import { UserStore } from "../server/embedded/user_store.ts";
import { Logger } from "../server/log.ts";
import { type ClientOptions, ParleyClient } from "../client/client.ts";

/** Repository root. */
export const ROOT = fromFileUrl(new URL("..", import.meta.url));

/** Decodes a hex key. */
export function keyBytes(hex: string): Uint8Array {
  return decodeHex(hex);
}

/** What a `parley user` process printed and how it exited. */
export interface UserCommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `parley user ARGS --data DIR` as its own process, as an operator would. */
export function runParleyUser(
  dataDir: string,
  ...args: string[]
): Promise<UserCommandResult> {
  return runParleyUserAllowing([], dataDir, ...args);
}

/**
 * {@linkcode runParleyUser} with more permissions than reading and writing DIR
 * (e.g. `--allow-net` and `--allow-env` for `--cluster`).
 */
export async function runParleyUserAllowing(
  allow: string[],
  dataDir: string,
  ...args: string[]
): Promise<UserCommandResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      `--allow-read=${dataDir}`,
      `--allow-write=${dataDir}`,
      ...allow,
      join(ROOT, "main.ts"),
      "user",
      ...args,
      "--data",
      dataDir,
    ],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/** {@linkcode runParleyUser} that must succeed; returns its standard output. */
export async function parleyUser(dataDir: string, ...args: string[]): Promise<string> {
  const out = await runParleyUser(dataDir, ...args);
  assertEquals(out.code, 0, `parley user ${args.join(" ")}: ${out.stderr}`);
  return out.stdout;
}

/** An in-process server with helpers. */
export interface TestServer extends AsyncDisposable {
  server: ParleyServer;
  port: number;
  dataDir: string;
  /** Creates an account and returns its hex key. */
  addUser(name: string, rights?: { admin?: boolean; exec?: boolean }): Promise<string>;
  /** Creates the account if needed and connects a client for it. */
  connect(name: string, options?: Partial<ClientOptions>): Promise<ParleyClient>;
}

/** Starts a server on 127.0.0.1:0 with a fresh temp data dir (removed on dispose). */
export async function startTestServer(
  overrides: ConfigOverrides = {},
  options: StartOptions = {},
): Promise<TestServer> {
  const dataDir = overrides.dataDir ?? await Deno.makeTempDir({ prefix: "parley-test-" });
  const config = await loadConfig({ hostname: "127.0.0.1", port: 0, ...overrides, dataDir });
  const server = await ParleyServer.start(config, {
    log: new Logger({ level: "error" }),
    ...options,
  });
  const keys = new Map<string, string>();
  const clients: ParleyClient[] = [];
  const addUser = async (name: string, rights: { admin?: boolean; exec?: boolean } = {}) => {
    const key = await server.accounts.add(name, rights);
    keys.set(name, key);
    return key;
  };
  return {
    server,
    port: server.port,
    dataDir,
    addUser,
    async connect(name, options = {}) {
      const key = keys.get(name) ?? await addUser(name);
      const client = await ParleyClient.connect({
        host: "127.0.0.1",
        port: server.port,
        user: name,
        key: keyBytes(key),
        tls: false,
        ...options,
      });
      clients.push(client);
      return client;
    },
    async [Symbol.asyncDispose]() {
      await Promise.all(clients.map((c) => c.close()));
      await server.close();
      if (!overrides.dataDir) await Deno.remove(dataDir, { recursive: true });
    },
  };
}

/** Deno permission flags the server runs with in tests (same as `deno task serve`, scoped). */
export function serveFlags(dataDir: string, extra: string[] = []): string[] {
  return [
    "run",
    "--allow-net",
    `--allow-read=${dataDir}`,
    `--allow-write=${dataDir}`,
    "--allow-env",
    ...extra,
    join(ROOT, "main.ts"),
  ];
}

/** A `parley serve` subprocess. */
export interface SpawnedServer extends AsyncDisposable {
  process: Deno.ChildProcess;
  port: number;
  dataDir: string;
  /** Output lines seen so far (stdout and stderr). */
  output: string[];
  /** Creates an account directly in the data dir; returns the hex key. */
  addUser(name: string, rights?: { admin?: boolean; exec?: boolean }): Promise<string>;
  /** Creates the account (with `rights`) and connects a client for it; the caller closes it. */
  connect(
    name: string,
    rights?: { admin?: boolean; exec?: boolean },
    options?: Partial<ClientOptions>,
  ): Promise<ParleyClient>;
  /** Sends a signal and waits for the exit status. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/** Starts `parley serve --port 0` as a real process and waits until it listens. */
export async function spawnServer(
  options: {
    dataDir?: string;
    args?: string[];
    denoFlags?: string[];
    env?: Record<string, string>;
  } = {},
): Promise<SpawnedServer> {
  const dataDir = options.dataDir ?? await Deno.makeTempDir({ prefix: "parley-proc-" });
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      ...serveFlags(dataDir, options.denoFlags ?? []),
      "serve",
      "--port",
      "0",
      "--data",
      dataDir,
      "--log-level",
      "warn",
      ...(options.args ?? []),
    ],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    env: { NO_COLOR: "1", ...(options.env ?? {}) },
  });
  const process = cmd.spawn();
  const output: string[] = [];
  let resolvePort!: (p: number) => void;
  const portP = new Promise<number>((r) => (resolvePort = r));
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoderStream();
    let buf = "";
    for await (const text of s.pipeThrough(dec)) {
      buf += text;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        output.push(line);
        const m = /listening on parleys?:\/\/[^\s]+:(\d+)/.exec(line);
        if (m) resolvePort(Number(m[1]));
      }
    }
  };
  const pumps = Promise.all([pump(process.stdout), pump(process.stderr)]);
  const status = process.status;
  let startTimer: ReturnType<typeof setTimeout> | undefined;
  const port = await Promise.race([
    portP,
    status.then((s) => {
      throw new Error(`server exited early (${s.code}):\n${output.join("\n")}`);
    }),
    new Promise<never>((_, rej) => {
      startTimer = setTimeout(() => rej(new Error("server did not start in 30 s")), 30_000);
    }),
  ]).finally(() => clearTimeout(startTimer));
  let stopped: Promise<Deno.CommandStatus> | undefined;
  const stop = (signal: Deno.Signal = "SIGTERM") => {
    if (!stopped) {
      try {
        process.kill(signal);
      } catch (e) {
        if (!(e instanceof TypeError)) throw e; // already exited
      }
      stopped = status.then(async (s) => {
        await pumps;
        return s;
      });
    }
    return stopped;
  };
  return {
    process,
    port,
    dataDir,
    output,
    async addUser(name, rights = {}) {
      return await (await UserStore.open(dataDir)).add(name, rights);
    },
    async connect(name, rights = {}, clientOptions = {}) {
      const key = await (await UserStore.open(dataDir)).add(name, rights);
      return await ParleyClient.connect({
        host: "127.0.0.1",
        port,
        user: name,
        key: keyBytes(key),
        tls: false,
        ...clientOptions,
      });
    },
    stop,
    async [Symbol.asyncDispose]() {
      await stop();
      if (!options.dataDir) await Deno.remove(dataDir, { recursive: true });
    },
  };
}
