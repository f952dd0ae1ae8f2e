/**
 * The Parley server: accepts connections, runs the handshake, and serves
 * requests through the registered features.
 *
 * @example
 * ```ts ignore
 * await using server = await ParleyServer.start(await loadConfig({ port: 0 }));
 * console.log(server.port);
 * ```
 *
 * @module
 */
import { serverHandshake } from "../protocol/handshake.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { Session } from "../protocol/session.ts";
import type { ServerConfig } from "./config.ts";
import type { ClientContext } from "./context.ts";
import type { ClientDirectory, Feature, FeatureDeps } from "./feature.ts";
import { Logger } from "./log.ts";
import { LoginRateLimiter } from "./rate_limit.ts";
import { OpRegistry } from "./registry.ts";
import { UserStore } from "./users.ts";
import { createFeatures } from "./features.ts";

/** Lifecycle of a server. */
export type ServerState = "running" | "closing" | "closed";

/** Options for {@linkcode ParleyServer.start} beyond the config. */
export interface StartOptions {
  /** Logger. Default: info level to stderr. */
  log?: Logger;
  /** Feature set. Default: every built-in feature. */
  features?: (deps: Omit<FeatureDeps, "config">, config: ServerConfig) => Feature[];
}

/** A running server. Close with {@linkcode ParleyServer.close} or `await using`. */
export class ParleyServer implements ClientDirectory {
  readonly config: ServerConfig;
  readonly users: UserStore;
  readonly registry = new OpRegistry();
  readonly log: Logger;
  #listener: Deno.Listener;
  #features: Feature[] = [];
  #state: ServerState = "running";
  #clients = new Map<number, ClientContext>();
  #byUser = new Map<string, Set<ClientContext>>();
  #open = new Set<Deno.Conn>();
  #perIp = new Map<string, number>();
  #unauthenticated = 0;
  #nextConnId = 1;
  #limiter: LoginRateLimiter;
  #tasks = new Set<Promise<void>>();
  #acceptLoop: Promise<void>;

  private constructor(
    config: ServerConfig,
    users: UserStore,
    listener: Deno.Listener,
    log: Logger,
  ) {
    this.config = config;
    this.users = users;
    this.#listener = listener;
    this.log = log;
    this.#limiter = new LoginRateLimiter({
      perUser: config.limits.loginFailuresPerUser,
      perAddress: config.limits.loginFailuresPerAddress,
    });
    this.#acceptLoop = this.#accept();
  }

  /** Opens the data dir, loads accounts and features, and starts listening. */
  static async start(config: ServerConfig, options: StartOptions = {}): Promise<ParleyServer> {
    const log = options.log ?? new Logger();
    const users = await UserStore.open(config.dataDir);
    const listener = config.tlsCert && config.tlsKey
      ? Deno.listenTls({
        hostname: config.hostname,
        port: config.port,
        cert: await Deno.readTextFile(config.tlsCert),
        key: await Deno.readTextFile(config.tlsKey),
      })
      : Deno.listen({ hostname: config.hostname, port: config.port });
    const server = new ParleyServer(config, users, listener, log);
    try {
      const deps = { dataDir: config.dataDir, users, clients: server, log };
      server.#features = options.features
        ? options.features(deps, config)
        : await createFeatures(deps, config);
      for (const f of server.#features) f.register(server.registry);
    } catch (e) {
      await server.close();
      throw e;
    }
    return server;
  }

  /** The port actually bound (useful with port 0). */
  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** The address bound. */
  get hostname(): string {
    return (this.#listener.addr as Deno.NetAddr).hostname;
  }

  /** Whether the listener speaks TLS. */
  get tls(): boolean {
    return Boolean(this.config.tlsCert && this.config.tlsKey);
  }

  /** Number of sockets open, authenticated or not. */
  get connectionCount(): number {
    return this.#open.size;
  }

  all(): Iterable<ClientContext> {
    return this.#clients.values();
  }

  byUser(name: string): ClientContext[] {
    return [...(this.#byUser.get(name) ?? [])];
  }

  /** Stops accepting, closes every session, closes features. Idempotent. */
  async close(): Promise<void> {
    if (this.#state !== "running") {
      while (this.#state !== "closed") await new Promise((r) => setTimeout(r, 10));
      return;
    }
    this.#state = "closing";
    try {
      this.#listener.close();
    } catch (e) {
      if (!(e instanceof Deno.errors.BadResource)) throw e;
    }
    await this.#acceptLoop;
    await Promise.all([...this.#clients.values()].map((c) => c.session.close()));
    for (const conn of this.#open) {
      try {
        conn.close();
      } catch (e) {
        if (!(e instanceof Deno.errors.BadResource)) throw e;
      }
    }
    await Promise.allSettled([...this.#tasks]);
    for (const f of this.#features) await f.close?.();
    this.#state = "closed";
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #accept(): Promise<void> {
    while (this.#state === "running") {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (e) {
        if (this.#state !== "running") return;
        if (e instanceof Deno.errors.BadResource || e instanceof Deno.errors.Interrupted) return;
        this.log.warn("accept failed", { error: (e as Error).message });
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      const task = this.#serve(conn).catch((e) => {
        this.log.error("connection handler failed", { error: (e as Error).message });
      });
      this.#tasks.add(task);
      task.finally(() => this.#tasks.delete(task));
    }
  }

  #refuse(conn: Deno.Conn, why: string): void {
    this.log.warn("connection refused", { why });
    try {
      conn.close();
    } catch (e) {
      if (!(e instanceof Deno.errors.BadResource)) throw e;
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    const remote = conn.remoteAddr as Deno.NetAddr;
    const host = remote.hostname;
    const addr = `${host}:${remote.port}`;
    const limits = this.config.limits;
    if (this.#open.size >= limits.maxConnections) return this.#refuse(conn, "max connections");
    if ((this.#perIp.get(host) ?? 0) >= limits.maxPerIp) return this.#refuse(conn, "per-ip limit");
    if (this.#unauthenticated >= limits.maxUnauthenticated) {
      return this.#refuse(conn, "too many unauthenticated connections");
    }
    if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
    this.#open.add(conn);
    this.#perIp.set(host, (this.#perIp.get(host) ?? 0) + 1);
    this.#unauthenticated++;
    let authenticated = false;
    let attemptedUser: string | undefined;
    try {
      let link;
      try {
        link = await serverHandshake(conn, {
          keyFor: (user) => this.users.keyFor(user),
          admit: (user) => {
            attemptedUser = user;
            this.#limiter.admit(host, user);
          },
          timeoutMs: limits.handshakeTimeoutMs,
          maxBody: limits.maxBody,
          window: { s: limits.streamWindow, c: limits.connectionWindow },
          maxStreams: limits.maxStreams,
        });
      } catch (e) {
        if (e instanceof ProtocolError && e.code === "auth_failed") {
          this.#limiter.fail(host, attemptedUser);
        }
        this.log.info("handshake failed", {
          addr,
          user: attemptedUser,
          code: e instanceof ProtocolError ? e.code : "io",
        });
        try {
          conn.close();
        } catch (ce) {
          if (!(ce instanceof Deno.errors.BadResource)) throw ce;
        }
        return;
      }
      this.#unauthenticated--;
      authenticated = true;
      const user = await this.users.get(link.user);
      if (!user || this.#state !== "running") {
        conn.close();
        return;
      }
      let ready!: () => void;
      const loggedIn = new Promise<void>((r) => (ready = r));
      const connId = this.#nextConnId++;
      const state = new Map<string, unknown>();
      // deno-lint-ignore prefer-const
      let ctx: ClientContext;
      const session = new Session({
        ...link,
        maxPendingBytes: limits.maxPendingBytes,
        onRequest: async (req) => {
          await loggedIn;
          return this.registry.dispatch(ctx, req.op, req.args, req.stream);
        },
      });
      ctx = { connId, user, addr, session, state };
      this.#clients.set(connId, ctx);
      let set = this.#byUser.get(user.name);
      if (!set) this.#byUser.set(user.name, set = new Set());
      set.add(ctx);
      this.log.info("login", { user: user.name, addr, conn: connId });
      try {
        for (const f of this.#features) await f.onLogin?.(ctx);
      } finally {
        ready();
      }
      const why = await session.closed;
      this.#clients.delete(connId);
      set.delete(ctx);
      if (set.size === 0) this.#byUser.delete(user.name);
      this.log.info("logout", { user: user.name, conn: connId, why: why?.message ?? "closed" });
      for (const f of this.#features) {
        try {
          await f.onLogout?.(ctx);
        } catch (e) {
          this.log.error("logout hook failed", { feature: f.name, error: (e as Error).message });
        }
      }
    } finally {
      if (!authenticated) this.#unauthenticated--;
      this.#open.delete(conn);
      const n = (this.#perIp.get(host) ?? 1) - 1;
      if (n <= 0) this.#perIp.delete(host);
      else this.#perIp.set(host, n);
    }
  }
}
