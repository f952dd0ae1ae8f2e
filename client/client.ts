/**
 * The programmatic client: connects, authenticates, reconnects with backoff,
 * and exposes requests, streams and server events. The REPL, the one-shot
 * commands and the tests all use it.
 *
 * @example
 * ```ts ignore
 * await using client = await ParleyClient.connect({ host: "127.0.0.1", port: 7878, user: "ada", key });
 * client.on("chat.msg", (m) => console.log(m));
 * await client.call("chat.send", { room: "lobby", text: "hello" });
 * ```
 *
 * @module
 */
import { clientHandshake } from "../protocol/handshake.ts";
import { ProtocolError, RemoteError } from "../protocol/errors.ts";
import type { Json } from "../protocol/messages.ts";
import type { MuxStream } from "../protocol/mux_stream.ts";
import { Session } from "../protocol/session.ts";
import type { Transport } from "../protocol/transport.ts";
import type { Credentials } from "./credentials.ts";
import { ChangedServerError, KnownServers, UnknownServerError } from "./known_servers.ts";
import { HelloCheck, NothingListensError } from "./not_parley.ts";
import { dialTls, PinMismatchError } from "./tls_connect.ts";

/** Connection state as seen by the application. */
export type ClientState = "connecting" | "open" | "reconnecting" | "closed";

/** The next reconnect attempt, while the client is reconnecting. */
export interface ReconnectRetry {
  /** Attempt number, from 1. */
  attempt: number;
  /** When the attempt starts (ms since the epoch). */
  at: number;
  /** Why the previous attempt (or the connection) failed. */
  why?: Error;
}

/** Options for {@linkcode ParleyClient.connect}. */
export interface ClientOptions extends Credentials {
  /** Reconnect after a lost connection. Default false. */
  reconnect?: boolean;
  /** First reconnect delay in ms (doubles up to `maxBackoffMs`). Default 200. */
  backoffMs?: number;
  /** Longest reconnect delay in ms. Default 5 000. */
  maxBackoffMs?: number;
  /** Handshake deadline in ms. Default 10 000. */
  timeoutMs?: number;
  /** Name the server certificate must carry (default: `host`). */
  tlsHostname?: string;
  /**
   * The pin of each node of a server list (each cluster node has its own
   * certificate); undefined falls back to `pin`, then to the known servers.
   */
  pinFor?: (host: string, port: number) => string | undefined;
}

type _Listener = (data: unknown) => void;

/** A connection to a Parley server. */
export class ParleyClient {
  readonly options: ClientOptions;
  #session!: Session;
  #state: ClientState = "connecting";
  #listeners = new Map<string, Set<_Listener>>();
  #stateListeners = new Set<(s: ClientState, why?: Error) => void>();
  #reconnectHooks: (() => Promise<void> | void)[] = [];
  #retryListeners = new Set<(retry: ReconnectRetry) => void>();
  #retry: ReconnectRetry | undefined;
  #opened: Promise<void> = Promise.resolve();
  #stop = new AbortController();
  /** Index in the server list of the node this client is (or was last) connected to. */
  #current = 0;
  /** The key was replaced since the current session logged in ({@linkcode replaceKey}). */
  #rekeyed = false;

  private constructor(options: ClientOptions) {
    this.options = options;
  }

  /** Connects and authenticates. Rejects with a clear error on failure. */
  static async connect(options: ClientOptions): Promise<ParleyClient> {
    const client = new ParleyClient(options);
    client.#session = await client.#dialAny(0);
    client.#setState("open");
    client.#watch();
    return client;
  }

  /** The current session (replaced after a reconnect). */
  get session(): Session {
    return this.#session;
  }

  /** Current state. */
  get state(): ClientState {
    return this.#state;
  }

  /** Authenticated user name. */
  get user(): string {
    return this.options.user;
  }

  /** Subscribes to a server event; returns an unsubscribe function. `*` gets every event as {ev, data}. */
  on(ev: string, fn: _Listener): () => void {
    let set = this.#listeners.get(ev);
    if (!set) this.#listeners.set(ev, set = new Set());
    set.add(fn);
    return () => set.delete(fn);
  }

  /** Subscribes to state changes. */
  onState(fn: (s: ClientState, why?: Error) => void): () => void {
    this.#stateListeners.add(fn);
    return () => this.#stateListeners.delete(fn);
  }

  /** The next reconnect attempt while reconnecting; undefined otherwise. */
  get retry(): ReconnectRetry | undefined {
    return this.#state === "reconnecting" ? this.#retry : undefined;
  }

  /** Subscribes to reconnect attempts: called once per attempt, before its wait. */
  onRetry(fn: (retry: ReconnectRetry) => void): () => void {
    this.#retryListeners.add(fn);
    return () => this.#retryListeners.delete(fn);
  }

  /** Runs `fn` after every successful reconnect, before queued calls proceed (e.g. to rejoin rooms). */
  onReconnect(fn: () => Promise<void> | void): void {
    this.#reconnectHooks.push(fn);
  }

  /** Sends a request; while reconnecting, waits for the new session first. */
  async call(op: string, args: Json = {}): Promise<unknown> {
    await this.#ready();
    return this.#session.call(op, args);
  }

  /** Opens a stream-carrying request on the current session. */
  open(op: string, args: Json = {}, options: { fin?: boolean } = {}): {
    stream: MuxStream;
    result: Promise<unknown>;
  } {
    if (this.#state !== "open") {
      throw new ProtocolError("closed", "not connected", { fatal: false });
    }
    return this.#session.open(op, args, options);
  }

  /**
   * Uses `key` from now on (after the user rotated it): the next reconnect
   * logs in with it, and a session closed because the key changed reconnects
   * instead of giving up.
   */
  replaceKey(key: Uint8Array): void {
    this.options.key = key;
    this.#rekeyed = true;
  }

  /** Resolves when connected (immediately if open). Rejects if closed. */
  async #ready(): Promise<void> {
    if (this.#state === "closed") {
      throw new ProtocolError("closed", "client closed", { fatal: false });
    }
    if (this.#state !== "open") await this.#opened;
  }

  /** Waits until the client is open again (after a reconnect). */
  waitOpen(): Promise<void> {
    return this.#ready();
  }

  /** Closes the connection and stops reconnecting. Idempotent. */
  async close(): Promise<void> {
    if (this.#state === "closed") return;
    this.#setState("closed");
    this.#stop.abort();
    await this.#session?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** The server this client is (or was last) connected to. */
  get server(): { host: string; port: number } {
    return this.#servers()[this.#current] ?? { host: this.options.host, port: this.options.port };
  }

  #servers(): { host: string; port: number }[] {
    const list = this.options.servers;
    return list && list.length > 0 ? list : [{ host: this.options.host, port: this.options.port }];
  }

  /**
   * Dials the servers in list order, starting at `start`, and returns the
   * first session that logs in. A refused login is final (every node of a
   * cluster shares the accounts); any other failure moves on to the next node.
   */
  async #dialAny(start: number): Promise<Session> {
    const servers = this.#servers();
    let last: unknown;
    let untrusted: unknown;
    for (let i = 0; i < servers.length; i++) {
      const index = (start + i) % servers.length;
      try {
        const session = await this.#dial(servers[index]!);
        this.#current = index;
        return session;
      } catch (e) {
        if (e instanceof RemoteError && (e.code === "auth_failed" || e.code === "forbidden")) {
          throw e;
        }
        // A certificate we may not trust says more than a later node that is down.
        if (_untrusted(e)) untrusted ??= e;
        last = e;
      }
    }
    throw untrusted ?? last;
  }

  async #dial(server: { host: string; port: number }): Promise<Session> {
    const o = { ...this.options, host: server.host, port: server.port };
    let conn: Transport;
    let channelBinding: Uint8Array | undefined;
    if (o.tls) {
      // Each node of a cluster has its own certificate: trust is per host:port.
      const known = o.knownServers === undefined ? undefined : new KnownServers(o.knownServers);
      const dialed = await dialTls({
        host: o.host,
        port: o.port,
        caCerts: o.caCerts,
        pin: o.pinFor?.(o.host, o.port) ?? o.pin,
        serverName: o.tlsHostname,
        trust: known &&
          ((fp) => known.check(o.host, o.port, fp, { acceptNew: o.acceptNew, ask: o.askNew })),
      });
      conn = dialed.transport;
      channelBinding = dialed.channelBinding;
    } else {
      let tcp: Deno.TcpConn;
      try {
        tcp = await Deno.connect({ hostname: o.host, port: o.port });
      } catch (e) {
        if (e instanceof Deno.errors.ConnectionRefused) {
          throw new NothingListensError(o.host, o.port, { cause: e });
        }
        throw e;
      }
      tcp.setNoDelay(true);
      // A port that is not Parley (SSH, HTTP, a silent one) is told within seconds.
      conn = new HelloCheck(tcp, { host: o.host, port: o.port, tls: false });
    }
    try {
      const link = await clientHandshake(conn, {
        user: o.user,
        key: o.key,
        timeoutMs: o.timeoutMs ?? 10_000,
        ...(channelBinding ? { channelBinding } : {}),
      });
      return new Session({
        ...link,
        onEvent: (ev, data) => this.#emit(ev, data),
      });
    } catch (e) {
      try {
        conn.close();
      } catch (ce) {
        if (!(ce instanceof Deno.errors.BadResource)) throw ce;
      }
      throw e;
    }
  }

  #emit(ev: string, data: unknown): void {
    for (const fn of this.#listeners.get(ev) ?? []) fn(data);
    for (const fn of this.#listeners.get("*") ?? []) fn({ ev, data });
  }

  #setState(s: ClientState, why?: Error): void {
    this.#state = s;
    for (const fn of this.#stateListeners) fn(s, why);
  }

  #watch(): void {
    void this.#session.closed.then(async (why) => {
      if (this.#state === "closed") return;
      const fatal = why instanceof RemoteError && !this.#rekeyed &&
        (why.code === "auth_failed" || why.code === "forbidden");
      this.#rekeyed = false;
      if (!this.options.reconnect || fatal) {
        this.#setState("closed", why);
        return;
      }
      let resolveOpened!: () => void;
      this.#opened = new Promise((r) => (resolveOpened = r));
      this.#setState("reconnecting", why);
      let delay = this.options.backoffMs ?? 200;
      let lastError: Error | undefined = why;
      for (let attempt = 1; !this.#stop.signal.aborted; attempt++) {
        this.#retry = { attempt, at: Date.now() + delay, ...(lastError ? { why: lastError } : {}) };
        for (const fn of this.#retryListeners) fn(this.#retry);
        await new Promise((r) => setTimeout(r, delay));
        if (this.#stop.signal.aborted) break;
        try {
          // After a lost connection, the next node first (it is likely up).
          this.#session = await this.#dialAny(this.#current + 1);
        } catch (e) {
          // A refused login or a changed certificate does not get better by retrying.
          if ((e instanceof RemoteError && e.code === "auth_failed") || _untrusted(e)) {
            this.#setState("closed", e instanceof Error ? e : new Error(String(e)));
            resolveOpened();
            return;
          }
          lastError = e instanceof Error ? e : new Error(String(e));
          delay = Math.min(delay * 2, this.options.maxBackoffMs ?? 5_000);
          continue;
        }
        this.#retry = undefined;
        this.#state = "open";
        for (const hook of this.#reconnectHooks) {
          try {
            await hook();
          } catch {
            // a failed hook must not stop the client; the next event shows the problem
          }
        }
        this.#setState("open");
        resolveOpened();
        this.#watch();
        return;
      }
      resolveOpened();
    }).catch((e) => this.#setState("closed", e instanceof Error ? e : new Error(String(e))));
  }
}

/** Whether `e` refuses a server's certificate (not a network failure). */
function _untrusted(e: unknown): boolean {
  return e instanceof ChangedServerError || e instanceof UnknownServerError ||
    e instanceof PinMismatchError;
}
