/**
 * Test fixture: real nats-server processes with JetStream on free loopback ports.
 *
 * `startNatsCluster()` starts three servers joined in one cluster (CLUSTER.md §7), `startNatsServer()`
 * one server on its own (fast contract tests). Store dirs live in one temp dir, removed at close.
 * Every process is started here and stopped here, by its own pid; nothing else is touched.
 *
 * Tests skip when nats-server is not installed:
 *
 * ```ts
 * const available = natsAvailable();
 * if (!available) console.log(NATS_SKIP_MESSAGE);
 * Deno.test({ name: "…", ignore: !available }, async () => {
 *   await using cluster = await startNatsCluster();
 *   const nc = await connect({ servers: cluster.urls });
 * });
 * ```
 */

/** Where nats-server is looked for, in order; `PARLEY_NATS_SERVER` overrides. */
const CANDIDATES = ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"];

/** Printed by tests that skip because nats-server is missing. */
export const NATS_SKIP_MESSAGE =
  "nats-server is not installed (apt-get install nats-server): cluster tests are skipped";

/** The nats-server binary, or undefined when none is installed. */
export function natsServerPath(): string | undefined {
  let override: string | undefined;
  try {
    override = Deno.env.get("PARLEY_NATS_SERVER");
  } catch {
    override = undefined;
  }
  for (const path of override ? [override] : CANDIDATES) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** True when nats-server is installed; prints the skip message once otherwise. */
export function natsAvailable(): boolean {
  const ok = natsServerPath() !== undefined;
  if (!ok && !skipPrinted) {
    skipPrinted = true;
    console.log(NATS_SKIP_MESSAGE);
  }
  return ok;
}
let skipPrinted = false;

export interface NatsServerHandle {
  /** server_name, n1 … n3 (or "n1" for the single server). */
  readonly name: string;
  /** nats://127.0.0.1:PORT of this server's client listener. */
  readonly url: string;
  /** http://127.0.0.1:PORT of its monitoring listener. */
  readonly monitorUrl: string;
  /** pid of the running process (changes on restart); 0 while stopped. */
  readonly pid: number;
  /** True while the process runs. */
  readonly running: boolean;
  /** Sends `signal` (default SIGTERM) to this server's own pid and waits until it exited. */
  kill(signal?: Deno.Signal): Promise<void>;
  /** Starts the server again with the same ports, config and store dir; resolves when healthy. */
  restart(): Promise<void>;
}

export interface NatsCluster extends AsyncDisposable {
  /** Client URLs of every server (pass all of them to `connect`). */
  readonly urls: string[];
  readonly servers: NatsServerHandle[];
  /** The temp dir holding configs and JetStream store dirs. */
  readonly dir: string;
  /** Kills every server this fixture started (by pid) and removes the temp dir. */
  close(): Promise<void>;
}

export interface NatsClusterOptions {
  /** Number of servers (default 3 for a cluster). */
  size?: number;
  /** Cluster name (default "parley"). */
  clusterName?: string;
  /** How long to wait for every server's JetStream health (default 20 s). */
  readyTimeoutMs?: number;
  /** Extra lines appended inside each server's config (e.g. authorization). */
  extraConfig?: string;
  /** Forward the servers' output to this process's stderr (default: discarded). */
  verbose?: boolean;
}

interface Ports {
  client: number;
  route: number;
  monitor: number;
}

/** Picks `n` distinct free loopback ports (held open together, then released). */
function freePorts(n: number): number[] {
  const listeners: Deno.Listener[] = [];
  try {
    for (let i = 0; i < n; i++) {
      listeners.push(Deno.listen({ hostname: "127.0.0.1", port: 0 }));
    }
    return listeners.map((l) => (l.addr as Deno.NetAddr).port);
  } finally {
    for (const l of listeners) l.close();
  }
}

function configText(
  name: string,
  ports: Ports,
  storeDir: string,
  allPorts: Ports[],
  opts: NatsClusterOptions,
): string {
  const lines = [
    `server_name: ${name}`,
    `listen: 127.0.0.1:${ports.client}`,
    `http: 127.0.0.1:${ports.monitor}`,
    `jetstream {`,
    `  store_dir: ${JSON.stringify(storeDir)}`,
    `  max_memory_store: 64MB`,
    `  max_file_store: 1GB`,
    `}`,
  ];
  if (allPorts.length > 1) {
    const routes = allPorts.map((p) => `nats-route://127.0.0.1:${p.route}`).join(", ");
    lines.push(
      `cluster {`,
      `  name: ${opts.clusterName ?? "parley"}`,
      `  listen: 127.0.0.1:${ports.route}`,
      `  routes: [${routes}]`,
      `}`,
    );
  }
  if (opts.extraConfig) lines.push(opts.extraConfig);
  return lines.join("\n") + "\n";
}

/**
 * JetStream health, and for a cluster a known meta leader too: `/healthz` says ok a little before
 * the meta group has elected its leader, and JetStream API calls time out until it has.
 */
async function healthy(monitorUrl: string, clusterSize: number): Promise<boolean> {
  try {
    const res = await fetch(`${monitorUrl}/healthz?js-enabled-only=true`, {
      signal: AbortSignal.timeout(1000),
    });
    const body = await res.text();
    if (!res.ok || !body.includes("ok")) return false;
    if (clusterSize <= 1) return true;
    const jsz = await fetch(`${monitorUrl}/jsz`, { signal: AbortSignal.timeout(1000) });
    const info = await jsz.json() as { meta_cluster?: { leader?: string; cluster_size?: number } };
    return Boolean(info.meta_cluster?.leader) && info.meta_cluster?.cluster_size === clusterSize;
  } catch {
    return false;
  }
}

class ServerProcess implements NatsServerHandle {
  readonly url: string;
  readonly monitorUrl: string;
  #child: Deno.ChildProcess | undefined;
  #status: Promise<Deno.CommandStatus> | undefined;
  #output: Promise<void>[] = [];

  constructor(
    readonly name: string,
    readonly ports: Ports,
    readonly configPath: string,
    readonly binary: string,
    readonly verbose: boolean,
    readonly readyTimeoutMs: number,
    readonly clusterSize: number,
  ) {
    this.url = `nats://127.0.0.1:${ports.client}`;
    this.monitorUrl = `http://127.0.0.1:${ports.monitor}`;
  }

  get pid(): number {
    return this.#child?.pid ?? 0;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  spawn(): void {
    if (this.#child) throw new Error(`${this.name} is already running`);
    const child = new Deno.Command(this.binary, {
      args: ["-c", this.configPath],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.#status = child.status;
    // Drain the output so the server never blocks on a full pipe.
    this.#output = [child.stdout, child.stderr].map((s) =>
      s.pipeTo(
        new WritableStream({
          write: (chunk) => {
            if (this.verbose) Deno.stderr.writeSync(chunk);
          },
        }),
      ).catch(() => {})
    );
  }

  async waitHealthy(): Promise<void> {
    const deadline = Date.now() + this.readyTimeoutMs;
    while (Date.now() < deadline) {
      if (!this.#child) throw new Error(`${this.name} is not running`);
      if (await healthy(this.monitorUrl, this.clusterSize)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`nats-server ${this.name} not healthy within ${this.readyTimeoutMs} ms`);
  }

  async kill(signal: Deno.Signal = "SIGTERM"): Promise<void> {
    const child = this.#child;
    if (!child) return;
    try {
      Deno.kill(child.pid, signal);
    } catch {
      // already gone
    }
    // Bounded: escalate to SIGKILL if it does not exit within 10 s.
    const exited = await Promise.race([
      this.#status!.then(() => true),
      new Promise<false>((r) => {
        const t = setTimeout(() => r(false), 10_000);
        void this.#status!.finally(() => clearTimeout(t));
      }),
    ]);
    if (!exited) {
      try {
        Deno.kill(child.pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
      await this.#status;
    }
    await Promise.all(this.#output);
    this.#child = undefined;
    this.#status = undefined;
    this.#output = [];
  }

  async restart(): Promise<void> {
    if (this.#child) await this.kill("SIGTERM");
    this.spawn();
    await this.waitHealthy();
  }
}

/** Starts `size` (default 3) nats-servers with JetStream, clustered when size > 1. */
export async function startNatsCluster(options: NatsClusterOptions = {}): Promise<NatsCluster> {
  const binary = natsServerPath();
  if (!binary) throw new Error(NATS_SKIP_MESSAGE);
  const size = options.size ?? 3;
  const readyTimeoutMs = options.readyTimeoutMs ?? 20_000;
  const dir = await Deno.makeTempDir({ prefix: "parley-nats-" });
  const flat = freePorts(size * 3);
  const ports: Ports[] = [];
  for (let i = 0; i < size; i++) {
    ports.push({ client: flat[i * 3]!, route: flat[i * 3 + 1]!, monitor: flat[i * 3 + 2]! });
  }
  const servers: ServerProcess[] = [];
  for (let i = 0; i < size; i++) {
    const name = `n${i + 1}`;
    const storeDir = `${dir}/${name}`;
    await Deno.mkdir(storeDir, { recursive: true });
    const configPath = `${dir}/${name}.conf`;
    await Deno.writeTextFile(configPath, configText(name, ports[i]!, storeDir, ports, options));
    servers.push(
      new ServerProcess(
        name,
        ports[i]!,
        configPath,
        binary,
        options.verbose ?? false,
        readyTimeoutMs,
        size,
      ),
    );
  }
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await Promise.all(servers.map((s) => s.kill("SIGTERM")));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    for (const s of servers) s.spawn();
    await Promise.all(servers.map((s) => s.waitHealthy()));
  } catch (e) {
    await close();
    throw e;
  }
  return {
    urls: servers.map((s) => s.url),
    servers,
    dir,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** One nats-server with JetStream, no cluster: for fast contract tests (R1 only). */
export function startNatsServer(
  options: Omit<NatsClusterOptions, "size" | "clusterName"> = {},
): Promise<NatsCluster> {
  return startNatsCluster({ ...options, size: 1 });
}
