/**
 * The hostile-suite target: a real `parley serve` process with a config of
 * short deadlines, an observer client that stays logged in throughout, and
 * the three checks run after every attack:
 *
 * 1. the server still serves others (the observer's session works and a new
 *    client can log in);
 * 2. no stored byte changed (every file in the data dir hashes the same, or,
 *    for append-only logs the attack may legitimately grow, keeps its old
 *    bytes as a prefix);
 * 3. memory returned near its baseline (resident set size of the server
 *    process, VmRSS in `/proc/PID/status`).
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { join, relative } from "@std/path";
import { createHash } from "node:crypto";
import { ParleyClient } from "../../client/client.ts";
import { keyBytes, type SpawnedServer, spawnServer } from "../helpers.ts";

/** How far above its baseline the server's RSS may stay after an attack. */
export const RSS_MARGIN = 64 * 1024 * 1024;

/** Options for {@linkcode startTarget}. */
export interface TargetOptions {
  /** The `limits` section of the server's config.json. */
  limits?: Record<string, unknown>;
  /** Other config.json sections (e.g. `files`, `chat`). */
  config?: Record<string, unknown>;
  /** Accounts to create before the server starts. Default: `observer` and `ada`. */
  users?: string[];
  /** Data directory to use (e.g. a small tmpfs); default a fresh temp dir. */
  dataDir?: string;
}

/** A file's fingerprint. */
interface _Stamp {
  size: number;
  sha256: string;
}

/** A server under attack. */
export interface Target extends AsyncDisposable {
  server: SpawnedServer;
  port: number;
  pid: number;
  dataDir: string;
  /** Hex keys by user name. */
  keys: Record<string, string>;
  /** Connects a real client (closed with the target). */
  client(user: string): Promise<ParleyClient>;
  /** Resident set size of the server process in bytes. */
  rss(): Promise<number>;
  /** Records the current data-dir contents and RSS as the baseline. */
  baseline(): Promise<void>;
  /**
   * Runs the three checks. `grows` lists data-dir paths (relative, prefix
   * match) that may have been appended to.
   */
  check(label: string, options?: { grows?: string[] }): Promise<void>;
}

/** Hashes every regular file under `dir` (relative path → size and SHA-256). */
export async function snapshot(dir: string): Promise<Map<string, _Stamp>> {
  const out = new Map<string, _Stamp>();
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (e.isDirectory) await walk(p);
      else if (e.isFile) {
        const bytes = await Deno.readFile(p);
        out.set(relative(dir, p), {
          size: bytes.byteLength,
          sha256: createHash("sha256").update(bytes).digest("hex"),
        });
      }
    }
  };
  await walk(dir);
  return out;
}

/**
 * Resident set size of `pid` in bytes, as `/proc/PID/status` VmRSS reports
 * it. Read through `ps` (procps): Deno only opens `/proc` with all
 * permissions, which this suite does not take.
 */
export async function rssOf(pid: number): Promise<number> {
  const out = await new Deno.Command("ps", { args: ["-o", "rss=", "-p", String(pid)] }).output();
  const kb = Number(new TextDecoder().decode(out.stdout).trim());
  if (!out.success || !Number.isFinite(kb) || kb <= 0) throw new Error(`no RSS for process ${pid}`);
  return kb * 1024;
}

/** Starts a server process with `limits` and creates the accounts. */
export async function startTarget(options: TargetOptions = {}): Promise<Target> {
  const dataDir = options.dataDir ?? await Deno.makeTempDir({ prefix: "parley-hostile-" });
  const ownDir = options.dataDir === undefined;
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  await Deno.writeTextFile(
    join(dataDir, "config.json"),
    JSON.stringify({ ...(options.config ?? {}), limits: options.limits ?? {} }),
  );
  // Plaintext: the attacks forge raw frames (with the frame MAC) on the socket.
  const server = await spawnServer({ dataDir, args: ["--plain"] });
  const keys: Record<string, string> = {};
  const clients: ParleyClient[] = [];
  for (const name of options.users ?? ["observer", "ada"]) keys[name] = await server.addUser(name);
  const pid = server.process.pid;
  let files = new Map<string, _Stamp>();
  let baseRss = 0;
  const client = async (user: string) => {
    const c = await ParleyClient.connect({
      host: "127.0.0.1",
      port: server.port,
      user,
      key: keyBytes(keys[user]!),
      ...server.clientOptions,
    });
    clients.push(c);
    return c;
  };
  const observer = await client("observer");
  const target: Target = {
    server,
    port: server.port,
    pid,
    dataDir,
    keys,
    client,
    rss: () => rssOf(pid),
    async baseline() {
      files = await snapshot(dataDir);
      baseRss = await rssOf(pid);
    },
    async check(label, opts = {}) {
      // (a) others are still served: the long-lived session and a new login.
      assertEquals(
        await observer.call("diag.echo", { after: label }),
        { after: label },
        `${label}: the observer's session stopped working`,
      );
      const fresh = await ParleyClient.connect({
        host: "127.0.0.1",
        port: server.port,
        user: "observer",
        key: keyBytes(keys.observer!),
        ...server.clientOptions,
      });
      try {
        assertEquals(await fresh.call("diag.echo", { n: 1 }), { n: 1 }, `${label}: new login`);
      } finally {
        await fresh.close();
      }
      // (b) no stored byte changed.
      const now = await snapshot(dataDir);
      for (const [path, before] of files) {
        const after = now.get(path);
        if (!after) throw new Error(`${label}: ${path} disappeared`);
        if (after.sha256 === before.sha256) continue;
        const grows = (opts.grows ?? []).some((g) => path.startsWith(g));
        assert(grows && after.size >= before.size, `${label}: ${path} changed`);
        const head = (await Deno.readFile(join(dataDir, path))).subarray(0, before.size);
        assertEquals(
          createHash("sha256").update(head).digest("hex"),
          before.sha256,
          `${label}: the old bytes of ${path} changed`,
        );
      }
      // (c) memory returns near its baseline (the collector may need a moment).
      let rss = await rssOf(pid);
      for (let i = 0; i < 50 && rss > baseRss + RSS_MARGIN; i++) {
        await new Promise((r) => setTimeout(r, 100));
        rss = await rssOf(pid);
      }
      assert(
        rss <= baseRss + RSS_MARGIN,
        `${label}: server RSS ${(rss / 2 ** 20).toFixed(1)} MiB, baseline ${
          (baseRss / 2 ** 20).toFixed(1)
        } MiB`,
      );
    },
    async [Symbol.asyncDispose]() {
      await Promise.all(clients.map((c) => c.close()));
      const status = await server.stop();
      if (ownDir) await Deno.remove(dataDir, { recursive: true });
      assert(
        status.signal === "SIGTERM" || status.code === 0,
        `the server crashed: ${JSON.stringify(status)}\n${server.output.join("\n")}`,
      );
    },
  };
  // Warm up the code paths an attack touches before taking the baseline.
  await observer.call("diag.echo", {});
  await target.baseline();
  return target;
}
