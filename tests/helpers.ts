/**
 * Test fixtures: servers on port 0 in temp directories (in-process or as a
 * real `parley serve` subprocess), accounts and connected clients.
 * Everything returned is disposable with `await using`.
 *
 * A `parley serve` subprocess runs as users run it: TLS with its own
 * certificate; its `clientOptions`/`clientEnv` pin that certificate. An
 * in-process server speaks plaintext (with the frame MAC) unless
 * `plain: false` is given, because many tests read and forge raw frames on
 * its socket; `clientOptions` fits either.
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

/**
 * `deno run` arguments for `parley ARGS` as its own process with network,
 * file and environment access (the cluster and file commands' needs).
 */
export function parleyProcessArgs(...args: string[]): string[] {
  return [
    "run",
    "--allow-net",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--config",
    join(ROOT, "deno.json"),
    join(ROOT, "main.ts"),
    ...args,
  ];
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

/** How a client reaches a server: TLS pinned to its certificate, or plaintext. */
export type TransportOptions = { tls: true; pin: string } | { tls: false };

/** The transport options for a server with `fingerprint` (undefined: plaintext). */
export function transportFor(fingerprint: string | undefined): TransportOptions {
  return fingerprint === undefined ? { tls: false } : { tls: true, pin: fingerprint };
}

/** Environment for a `parley` client process: the pin, or nothing for plaintext (use {@linkcode TestServer.url}). */
export function clientEnvFor(fingerprint: string | undefined): Record<string, string> {
  return fingerprint === undefined ? {} : { PARLEY_PIN: fingerprint };
}

/** `parley://USER@127.0.0.1:PORT`, or `parley+plain://…` for a plaintext server. */
export function serverUrl(user: string, port: number, fingerprint: string | undefined): string {
  return `${fingerprint === undefined ? "parley+plain" : "parley"}://${user}@127.0.0.1:${port}`;
}

/** An in-process server with helpers. */
export interface TestServer extends AsyncDisposable {
  server: ParleyServer;
  port: number;
  dataDir: string;
  /** `sha256:…` of the certificate served, or undefined for plaintext. */
  fingerprint: string | undefined;
  /** Client options that reach this server (TLS pinned, or plaintext). */
  clientOptions: TransportOptions;
  /** Environment a `parley` client process needs besides its URL (the pin). */
  clientEnv: Record<string, string>;
  /** The address a `parley` client process uses for `user`. */
  url(user: string): string;
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
  const config = await loadConfig({
    hostname: "127.0.0.1",
    port: 0,
    ...overrides,
    plain: overrides.plain ?? overrides.tlsCert === undefined,
    dataDir,
  });
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
  const fingerprint = server.fingerprint;
  return {
    server,
    port: server.port,
    dataDir,
    fingerprint,
    clientOptions: transportFor(fingerprint),
    clientEnv: clientEnvFor(fingerprint),
    url: (user) => serverUrl(user, server.port, fingerprint),
    addUser,
    async connect(name, options = {}) {
      const key = keys.get(name) ?? await addUser(name);
      const client = await ParleyClient.connect({
        host: "127.0.0.1",
        port: server.port,
        user: name,
        key: keyBytes(key),
        ...transportFor(fingerprint),
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

/** Deno permission flags the server runs with in tests: narrower than `deno task serve` (read and write only in the data dir). */
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
  /** `sha256:…` of the certificate it serves (as it printed it), or undefined with `--plain`. */
  fingerprint: string | undefined;
  /** Client options that reach it (TLS pinned, or plaintext). */
  clientOptions: TransportOptions;
  /** Environment a `parley` client process needs besides its URL (the pin). */
  clientEnv: Record<string, string>;
  /** The address a `parley` client process uses for `user`. */
  url(user: string): string;
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

/**
 * Starts `parley serve --port 0` as a real process and waits until it
 * listens (and, with TLS, has printed its certificate's fingerprint).
 */
export async function spawnServer(
  options: {
    dataDir?: string;
    args?: string[];
    denoFlags?: string[];
    env?: Record<string, string>;
    /**
     * A program (and its arguments) that starts the server by exec'ing the rest of its
     * arguments, such as a shell that opens descriptors first; the server keeps its pid.
     */
    launcher?: string[];
  } = {},
): Promise<SpawnedServer> {
  const dataDir = options.dataDir ?? await Deno.makeTempDir({ prefix: "parley-proc-" });
  const [program, ...launcherArgs] = [...(options.launcher ?? []), Deno.execPath()];
  const cmd = new Deno.Command(program!, {
    args: [
      ...launcherArgs,
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
  let resolvePort!: (p: { port: number; fingerprint: string | undefined }) => void;
  const portP = new Promise<{ port: number; fingerprint: string | undefined }>((
    r,
  ) => (resolvePort = r));
  let listenPort: number | undefined;
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
        // TLS: "listening on parley://…:PORT", then "certificate sha256:…".
        const m = /listening on (parleys?|parley\+plain):\/\/[^\s]+:(\d+)/.exec(line);
        if (m && m[1] === "parley+plain") {
          resolvePort({ port: Number(m[2]), fingerprint: undefined });
        } else if (m) listenPort = Number(m[2]);
        const c = /^parley: certificate (sha256:[0-9a-f]{64})/.exec(line);
        if (c && listenPort !== undefined) resolvePort({ port: listenPort, fingerprint: c[1] });
      }
    }
  };
  const pumps = Promise.all([pump(process.stdout), pump(process.stderr)]);
  const status = process.status;
  let startTimer: ReturnType<typeof setTimeout> | undefined;
  const { port, fingerprint } = await Promise.race([
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
    fingerprint,
    clientOptions: transportFor(fingerprint),
    clientEnv: clientEnvFor(fingerprint),
    url: (user) => serverUrl(user, port, fingerprint),
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
        ...transportFor(fingerprint),
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
