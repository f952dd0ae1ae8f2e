/**
 * Hosts one server feature as the server does, without a server process or
 * socket: each connection is a real client Session talking to a real server
 * Session over an in-memory transport pair, the server side checking the
 * feature's `admit` and dispatching to its operations, with `onLogin` and
 * `onLogout` called around the connection. The feature tests of chat, files
 * and exec build their backends and feature, then connect through this.
 *
 * @module
 */
import { verifierOf } from "../protocol/auth.ts";
import { assertRejects } from "@std/assert";
import { clientHandshake, serverHandshake } from "../protocol/handshake.ts";
import { RemoteError } from "../protocol/errors.ts";
import { Session, type SessionOptions } from "../protocol/session.ts";
import type { Account } from "../server/backend/accounts.ts";
import type { ClientContext } from "../server/context.ts";
import type { Feature } from "../server/feature.ts";
import { OpRegistry } from "../server/registry.ts";
import { memoryPipe, TEST_KEY } from "./protocol/protocol_fixture.ts";

/** One connection: both ends of its session and the server's context for it. */
export interface FeatureConnection {
  client: Session;
  server: Session;
  ctx: ClientContext;
}

/** Options for {@linkcode FeatureHost.connect}. */
export interface ConnectOptions {
  /** Events the server pushes to this client. */
  onEvent?: SessionOptions["onEvent"];
}

/** A feature served over in-memory connections; disposing closes them and the feature. */
export interface FeatureHost extends AsyncDisposable {
  /** A new connection of `account`; rejects as the login does when `admit` refuses it. */
  connect(account: Account, options?: ConnectOptions): Promise<FeatureConnection>;
}

/** Options for {@linkcode hostFeature}. */
export interface HostOptions {
  /**
   * Where the open connections are kept, as the server keeps its client
   * directory: pass the set behind the feature's `clients`. Default: a new set.
   */
  contexts?: Set<ClientContext>;
}

/** An account with only the rights given (no admin, no exec by default). */
export function testAccount(
  name: string,
  rights: { admin?: boolean; exec?: boolean } = {},
): Account {
  return {
    name,
    admin: rights.admin ?? false,
    exec: rights.exec ?? false,
    created: new Date(0).toISOString(),
    keyId: "test",
  };
}

/** Serves `feature`'s operations to connections made with `connect`. */
export function hostFeature(feature: Feature, options: HostOptions = {}): FeatureHost {
  const contexts = options.contexts ?? new Set<ClientContext>();
  const registry = new OpRegistry();
  feature.register(registry);
  const sessions: Session[] = [];
  const logouts: Promise<void>[] = [];
  let connId = 0;
  return {
    async connect(account, connectOptions = {}) {
      feature.admit?.(account);
      const [c, s] = memoryPipe();
      const [clientLink, serverLink] = await Promise.all([
        clientHandshake(c, { user: account.name, key: TEST_KEY, timeoutMs: 5000 }),
        serverHandshake(s, { verifierFor: () => verifierOf(TEST_KEY), timeoutMs: 5000 }),
      ]);
      const ctx: ClientContext = {
        connId: ++connId,
        user: account,
        addr: "memory",
        session: undefined as unknown as Session,
      };
      const server = new Session({
        ...serverLink,
        // As the server does: admit is checked again before every request, and a
        // handler that throws at once fails its request only.
        onRequest: (req) => {
          try {
            feature.admit?.(ctx.user);
            return registry.dispatch(ctx, req.op, req.args, req.stream);
          } catch (e) {
            return Promise.reject(e);
          }
        },
      });
      (ctx as { session: Session }).session = server;
      const client = new Session({
        ...clientLink,
        ...(connectOptions.onEvent ? { onEvent: connectOptions.onEvent } : {}),
      });
      contexts.add(ctx);
      await feature.onLogin?.(ctx);
      logouts.push(server.closed.then(async () => {
        contexts.delete(ctx);
        await feature.onLogout?.(ctx);
      }));
      sessions.push(client, server);
      return { client, server, ctx };
    },
    async [Symbol.asyncDispose]() {
      await Promise.all(sessions.map((s) => s.close()));
      await Promise.all(logouts);
      await feature.close?.();
    },
  };
}

/** The code of the {@linkcode RemoteError} that `p` rejects with. */
export async function remoteCode(p: Promise<unknown>): Promise<string> {
  const e = await assertRejects(() => p, RemoteError);
  return e.code;
}
