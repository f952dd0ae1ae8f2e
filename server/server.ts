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
import { type AuthenticatedLink, serverHandshake } from "../protocol/handshake.ts";
import { concat } from "@std/bytes/concat";
import { encodeFrame } from "../protocol/frame_codec.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { writeAll } from "../protocol/transport.ts";
import { Session } from "../protocol/session.ts";
import type { ServerConfig } from "./config.ts";
import type { ClientContext } from "./context.ts";
import type { ClientDirectory, Feature, FeatureDeps } from "./feature.ts";
import { Logger } from "./log.ts";
import { type LoginAttempt, LoginRateLimiter } from "./rate_limit.ts";
import { OpRegistry } from "./registry.ts";
import { INITIAL_CONNECTION_CREDIT, UserBudgets } from "./user_budget.ts";
import { createFeatures } from "./features.ts";
import type { Backend } from "./backend/mod.ts";
import type { Account, AccountChange, Accounts } from "./backend/accounts.ts";
import { openEmbeddedBackend } from "./embedded/mod.ts";
import { RequestError } from "./errors.ts";

/** The operation a user calls to rotate their own key (PROTOCOL.md §12, account). */
export const ACCOUNT_ROTATE = "account.rotate";
import { ensureTlsIdentity, readTlsIdentity, type TlsIdentity } from "./tls_identity.ts";

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
  /** The accounts backend (the backend's `accounts`). */
  readonly accounts: Accounts;
  readonly registry = new OpRegistry();
  readonly log: Logger;
  /** Requests in flight and receive credit, per user across connections. */
  readonly budgets: UserBudgets;
  #listener: Deno.Listener;
  /** The certificate served, or undefined for a plaintext listener. */
  #identity: TlsIdentity | undefined;
  #features: Feature[] = [];
  #backend: Backend;
  #state: ServerState = "running";
  #clients = new Map<number, _LiveClient>();
  #byUser = new Map<string, Set<_LiveClient>>();
  #open = new Set<Deno.Conn>();
  #perIp = new Map<string, number>();
  /** Connections still in the handshake, oldest first (insertion order). */
  #pending = new Set<Deno.Conn>();
  /** When each quiet client was sent the ping not yet answered (by connId). */
  #pinged = new Map<number, number>();
  /** Connections rotating their own key: their session goes on with the new one (#revise). */
  #rotating = new Set<number>();
  /** Connections on TLS bound to our certificate (a new key may be sent over them). */
  #bound = new Set<number>();
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #nextConnId = 1;
  #limiter: LoginRateLimiter;
  #tasks = new Set<Promise<void>>();
  #acceptLoop: Promise<void>;
  /** Ends our subscription to account changes. */
  #unsubscribe: (() => void) | undefined;

  private constructor(
    config: ServerConfig,
    backend: Backend,
    listener: Deno.Listener,
    identity: TlsIdentity | undefined,
    log: Logger,
  ) {
    this.config = config;
    this.#identity = identity;
    this.#backend = backend;
    this.accounts = backend.accounts;
    this.#listener = listener;
    this.log = log;
    this.budgets = new UserBudgets(config.limits);
    this.#limiter = new LoginRateLimiter({
      perUser: config.limits.loginFailuresPerUser,
      perAddress: config.limits.loginFailuresPerAddress,
      windowMs: config.limits.loginWindowMs,
    });
    // One timer for all clients: idle timeout with keepalive, and stalled writes.
    const periods = [config.limits.idleTimeoutMs, config.limits.writeStallMs].filter((ms) =>
      ms > 0
    );
    if (periods.length > 0) {
      const every = Math.max(25, Math.floor(Math.min(...periods) / 4));
      this.#sweeper = setInterval(() => this.#sweep(), every);
    }
    this.#acceptLoop = this.#accept();
  }

  /** Opens the backend (accounts included) and features, and starts listening. */
  static async start(config: ServerConfig, options: StartOptions = {}): Promise<ParleyServer> {
    const log = options.log ?? new Logger();
    // Cluster mode loads the NATS code only when asked for (docs/cluster.md).
    const backend = config.cluster
      ? await (await import("./nats/mod.ts")).openNatsBackend(config, log)
      : await openEmbeddedBackend(config, log);
    let listener: Deno.Listener;
    let identity: TlsIdentity | undefined;
    try {
      // TLS unless asked for plaintext: the given certificate, or our own.
      if (!config.plain) {
        identity = config.tlsCert && config.tlsKey
          ? await readTlsIdentity(config.tlsCert, config.tlsKey)
          : await ensureTlsIdentity(config.dataDir);
      }
      listener = identity
        ? Deno.listenTls({
          hostname: config.hostname,
          port: config.port,
          cert: identity.certPem,
          key: identity.keyPem,
        })
        : Deno.listen({ hostname: config.hostname, port: config.port });
    } catch (e) {
      await backend.close();
      throw e;
    }
    const server = new ParleyServer(config, backend, listener, identity, log);
    try {
      const deps = { backend, clients: server, log };
      server.#features = options.features
        ? options.features(deps, config)
        : await createFeatures(deps, config);
      for (const f of server.#features) f.register(server.registry);
      server.registry.register(ACCOUNT_ROTATE, (ctx) => server.#rotateOwnKey(ctx));
      // Account changes by any process reach live sessions at once (#revise).
      server.#unsubscribe = backend.accounts.subscribe((change) => server.#revise(change));
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
    return this.#identity !== undefined;
  }

  /** `sha256:<hex>` of the certificate served (what clients pin), or undefined on plaintext. */
  get fingerprint(): string | undefined {
    return this.#identity?.fingerprint;
  }

  /** Number of sockets open, authenticated or not. */
  get connectionCount(): number {
    return this.#open.size;
  }

  /** Number of sockets still in the handshake. */
  get unauthenticatedCount(): number {
    return this.#pending.size;
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
    clearInterval(this.#sweeper);
    this.#unsubscribe?.();
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
    await this.#backend.close();
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
      // floating-ok: `task` ends in .catch above, so this never rejects
      task.finally(() => this.#tasks.delete(task));
    }
  }

  /**
   * Tells the peer why in one `busy` error frame, then closes. The frame is
   * tiny, so the write completes at once even if the peer never reads.
   */
  async #refuse(conn: Deno.Conn, why: string): Promise<void> {
    this.log.info("connection refused", { why });
    try {
      await conn.write(encodeFrame({ t: "error", code: "busy", msg: `server busy: ${why}` }));
    } catch {
      // the peer is already gone; closing below is all that is left
    }
    _closeQuietly(conn);
  }

  /**
   * Keepalive and idle timeout (PROTOCOL.md §5.3): any frame from the peer,
   * a `pong` included, counts as activity. A client quiet for half the idle
   * timeout is pinged; it is closed only when it has been quiet for the whole
   * timeout and that ping has gone unanswered for at least half of it, so a
   * peer that answers pings is never dropped, however late in a sweep the
   * ping went out. Also closes a client whose socket write has waited past
   * `writeStallMs` (it stopped reading while data flowed). One timer for all
   * clients keeps idle connections cheap.
   */
  #sweep(): void {
    const limit = this.config.limits.idleTimeoutMs;
    const stall = this.config.limits.writeStallMs;
    const now = Date.now();
    for (const ctx of this.#clients.values()) {
      if (stall > 0 && ctx.session.writeWaitingMs(now) >= stall) {
        this.#drop(
          ctx.session,
          new ProtocolError("slow_consumer", `peer read nothing for ${stall} ms while data waited`),
        );
        continue;
      }
      if (limit <= 0) continue;
      const quiet = now - ctx.session.lastActivity;
      const sent = this.#pinged.get(ctx.connId);
      if (sent !== undefined) {
        if (quiet >= limit && now - sent >= limit / 2) {
          this.#drop(
            ctx.session,
            new ProtocolError("timeout", `connection idle for more than ${limit} ms`),
          );
        }
      } else if (quiet >= limit / 2) {
        const connId = ctx.connId;
        this.#pinged.set(connId, now);
        // The pong is the answer we wait for; a closed session ends the wait.
        ctx.session.ping().then(() => {
          if (this.#pinged.get(connId) === now) this.#pinged.delete(connId);
        }, () => {});
      }
    }
  }

  /** Closes `session` with `why` without waiting for the goodbye to flush. */
  #drop(session: Session, why: ProtocolError): void {
    session.close(why).catch((e: unknown) => {
      this.log.error("closing a session failed", { error: (e as Error).message });
    });
  }

  /** Why a feature refuses `user` (a ban), or undefined when every feature admits it. */
  #refusal(user: Account): ProtocolError | undefined {
    for (const f of this.#features) {
      try {
        f.admit?.(user);
      } catch (e) {
        if (e instanceof ProtocolError) return e;
        throw e;
      }
    }
    return undefined;
  }

  /**
   * Brings the live sessions of a changed account in line with it: a removed
   * account, a new key or a lowered right closes the user's sessions at once
   * (lowering a right also stops work already started with it, such as a
   * running command); raised rights are applied to the live sessions by
   * replacing their record.
   */
  #revise(change: AccountChange): void {
    for (const ctx of this.#byUser.get(change.name) ?? []) {
      if (ctx.session.state !== "open") continue;
      const now = change.account;
      if (this.#rotating.has(ctx.connId) && now !== undefined) {
        ctx.user = now; // the rotating session itself goes on with the new key
        continue;
      }
      const why = _changed(ctx.user, now);
      if (why) {
        this.log.info("session revoked", { user: ctx.user.name, conn: ctx.connId, code: why.code });
        this.#drop(ctx.session, why);
      } else if (now !== undefined && now !== ctx.user) {
        ctx.user = now;
      }
    }
  }

  /**
   * `account.rotate`: gives the caller's account a new key and returns it.
   * Only over TLS (the reply carries the key). The user's other sessions
   * close as for any key change; this one goes on, as its user proved the
   * old key a moment ago.
   */
  async #rotateOwnKey(ctx: ClientContext): Promise<{ key: string }> {
    if (!this.#bound.has(ctx.connId)) {
      throw new RequestError(
        "forbidden",
        "a new key is only sent over TLS; ask the operator to run `parley user rotate`",
      );
    }
    this.#rotating.add(ctx.connId);
    try {
      const key = await this.accounts.rotate(ctx.user.name);
      this.log.info("key rotated by its user", { user: ctx.user.name, conn: ctx.connId });
      return { key };
    } finally {
      this.#rotating.delete(ctx.connId);
    }
  }

  /**
   * Makes room for a new handshake by closing the oldest unfinished one, so
   * slow or idle handshakes can't hold every slot until their deadline.
   */
  #evictOldestPending(): void {
    const oldest = this.#pending.values().next().value;
    if (oldest === undefined) return;
    this.#pending.delete(oldest);
    this.log.info("dropped the oldest unfinished handshake", {
      limit: this.config.limits.maxUnauthenticated,
    });
    _closeQuietly(oldest);
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    const remote = conn.remoteAddr as Deno.NetAddr;
    const host = remote.hostname;
    const addr = `${host}:${remote.port}`;
    const limits = this.config.limits;
    if (this.#open.size >= limits.maxConnections) return this.#refuse(conn, "max connections");
    if ((this.#perIp.get(host) ?? 0) >= limits.maxPerIp) return this.#refuse(conn, "per-ip limit");
    if (this.#pending.size >= limits.maxUnauthenticated) this.#evictOldestPending();
    if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
    this.#open.add(conn);
    this.#perIp.set(host, (this.#perIp.get(host) ?? 0) + 1);
    this.#pending.add(conn);
    let attemptedUser: string | undefined;
    let attempt: LoginAttempt | undefined;
    /** The account whose key the login proof was checked against. */
    let proven: Account | undefined;
    try {
      let link;
      try {
        link = await serverHandshake(conn, {
          verifierFor: async (user) => {
            const login = await this.accounts.verifierFor(user);
            proven = login?.account;
            return login?.verifier;
          },
          // The proofs cover our certificate: a relay presenting another fails.
          ...(this.#identity ? { channelBinding: this.#identity.hash } : {}),
          admit: (user) => {
            attemptedUser = user;
            attempt = this.#limiter.admit(host, user);
          },
          timeoutMs: limits.handshakeTimeoutMs,
          maxBody: limits.maxBody,
          // The connection window starts small and grows from the user's budget.
          window: {
            s: limits.streamWindow,
            c: Math.min(limits.connectionWindow, INITIAL_CONNECTION_CREDIT),
          },
          maxStreams: limits.maxStreams,
        });
      } catch (e) {
        // A wrong proof stays counted for the window; an attempt that ended
        // before its proof was checked guessed nothing and is released.
        const guessed = e instanceof ProtocolError && e.code === "auth_failed";
        if (attempt && !guessed) this.#limiter.release(attempt);
        this.log.info("handshake failed", {
          addr,
          user: attemptedUser,
          code: e instanceof ProtocolError ? e.code : "io",
        });
        _closeQuietly(conn);
        return;
      }
      this.#pending.delete(conn);
      if (attempt) this.#limiter.release(attempt);
      if (this.#state !== "running") {
        _closeQuietly(conn);
        return;
      }
      // Admission: the account still exists with the key just proven and no
      // feature refuses it (a ban). From here to announcing the session there
      // is no await, so a change or ban after this check finds the session in
      // #clients and closes it (#revise, chat.ban). Frames the client sent
      // behind its proof are never read for a refused login.
      const user = this.accounts.peek(link.user);
      const refusal = user ? _changed(proven, user) ?? this.#refusal(user) : _removed();
      if (refusal || !user) {
        const why = refusal ?? _removed();
        this.log.info("login refused", { user: link.user, addr, code: why.code });
        await _refuseLink(link, why);
        _closeQuietly(conn);
        return;
      }
      let ready!: (ok: boolean) => void;
      const loggedIn = new Promise<boolean>((r) => (ready = r));
      const connId = this.#nextConnId++;
      // deno-lint-ignore prefer-const
      let ctx: _LiveClient;
      const budget = this.budgets.open(user.name);
      // Requests still running when the session ends (an upload settling its
      // partial file) finish before this task does, so closing the server
      // waits for them before it closes the features and the backend.
      let running: Set<Promise<unknown>> | undefined;
      const session = new Session({
        ...link,
        maxPendingBytes: limits.maxPendingBytes,
        maxConnectionWindow: limits.connectionWindow,
        creditPool: budget.credit,
        onRequest: (req) => {
          let done: () => void;
          try {
            done = budget.admit();
          } catch (e) {
            return Promise.reject(e);
          }
          const run = (async () => {
            // Nothing runs for a session refused or closed at login, or closed
            // since (a ban, a removed account): check again just before dispatch.
            if (!(await loggedIn) || ctx.session.state !== "open") throw _closedError();
            const refusal = this.#refusal(ctx.user);
            if (refusal) {
              this.#drop(ctx.session, refusal);
              throw refusal;
            }
            return await this.registry.dispatch(ctx, req.op, req.args, req.stream);
          })().finally(() => {
            done();
            running?.delete(run);
            if (running?.size === 0) running = undefined;
          });
          (running ??= new Set()).add(run);
          return run;
        },
      });
      ctx = { connId, user, addr, session };
      if (link.channelBound) this.#bound.add(connId);
      this.#clients.set(connId, ctx);
      let set = this.#byUser.get(user.name);
      if (!set) this.#byUser.set(user.name, set = new Set());
      set.add(ctx);
      this.log.info("login", { user: user.name, addr, conn: connId });
      let ok = false;
      try {
        for (const f of this.#features) await f.onLogin?.(ctx);
        ok = session.state === "open"; // a login hook may have closed it
      } catch (e) {
        this.log.error("login hook failed", { user: user.name, error: (e as Error).message });
        this.#drop(session, new ProtocolError("internal", "login failed"));
      } finally {
        ready(ok);
      }
      const why = await session.closed;
      budget.close();
      this.#clients.delete(connId);
      this.#pinged.delete(connId);
      this.#bound.delete(connId);
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
      if (running) await Promise.allSettled(running);
    } finally {
      this.#pending.delete(conn);
      this.#open.delete(conn);
      const n = (this.#perIp.get(host) ?? 1) - 1;
      if (n <= 0) this.#perIp.delete(host);
      else this.#perIp.set(host, n);
    }
  }
}

/** A client context whose account record the server may replace (#revise). */
type _LiveClient = { -readonly [K in keyof ClientContext]: ClientContext[K] };

function _removed(): ProtocolError {
  return new ProtocolError("auth_failed", "your account was removed");
}

function _closedError(): ProtocolError {
  return new ProtocolError("closed", "session closed");
}

/**
 * Why a session holding `before` may not go on now that the account store
 * holds `now`: removed, new key, or fewer rights. Undefined when it may.
 */
function _changed(
  before: Account | undefined,
  now: Account | undefined,
): ProtocolError | undefined {
  if (!before || !now) return _removed();
  if (before.keyId !== now.keyId) {
    return new ProtocolError("auth_failed", "your key was changed; log in with the new key");
  }
  if ((before.admin && !now.admin) || (before.exec && !now.exec)) {
    return new ProtocolError("forbidden", "your rights were changed; log in again");
  }
  return undefined;
}

/**
 * Tells a client whose login was refused after the handshake why, in one
 * `error` frame under the session MAC, without reading anything it sent.
 */
async function _refuseLink(link: AuthenticatedLink, why: ProtocolError): Promise<void> {
  const frame = encodeFrame({ t: "error", code: why.code, msg: why.message });
  const tag = link.sendMac?.next(frame.subarray(4), new Uint8Array(0));
  try {
    await writeAll(link.transport, tag ? concat([frame, tag]) : frame);
  } catch {
    // the peer is already gone; closing is all that is left
  }
}

function _closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch (e) {
    if (!(e instanceof Deno.errors.BadResource)) throw e;
  }
}
