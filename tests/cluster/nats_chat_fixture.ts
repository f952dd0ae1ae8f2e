/**
 * Cluster chat instances for the tests in this folder: a chat "node" on its
 * own NATS connection that records everything its feed hands out.
 *
 * @module
 */
import { assert } from "@std/assert";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { ChatMessage } from "../../server/backend/chat.ts";
import { Logger } from "../../server/log.ts";
import { type NatsChat, type NatsChatOptions, openNatsChat } from "../../server/nats/chat.ts";

const _QUIET = new Logger({ level: "error", sink: () => {} });

/** One chat instance on its own connection, with everything its feed handed out. */
export interface ChatNode extends AsyncDisposable {
  nc: NatsConnection;
  chat: NatsChat;
  seen: ChatMessage[];
  /** When each message was handed out (performance.now()). */
  at: number[];
}

/**
 * Opens the cluster chat as node `node` on its own connection to `urls`
 * (tried in that order), with R3 parts, recording its feed.
 */
export async function chatNode(
  urls: string[],
  node: string,
  extra: Partial<NatsChatOptions> = {},
): Promise<ChatNode> {
  const nc = await connect({
    servers: urls,
    noRandomize: true,
    name: node,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    pingInterval: 2_000,
    maxPingOut: 2,
  });
  let chat: NatsChat;
  try {
    chat = await openNatsChat(nc, {
      node,
      replicas: 3,
      log: _QUIET,
      ...extra,
    });
  } catch (e) {
    await nc.close();
    throw e;
  }
  const seen: ChatMessage[] = [];
  const at: number[] = [];
  const stop = chat.feed.subscribe((m) => {
    seen.push(m);
    at.push(performance.now());
  });
  return {
    nc,
    chat,
    seen,
    at,
    async [Symbol.asyncDispose]() {
      stop();
      await chat.close();
      await nc.close();
    },
  };
}

export async function eventually(ok: () => boolean, what: string, ms = 30_000): Promise<void> {
  for (let i = 0; i < ms / 20 && !ok(); i++) await new Promise((r) => setTimeout(r, 20));
  assert(ok(), `timed out waiting for ${what}`);
}

export function ids(msgs: readonly ChatMessage[]): number[] {
  return msgs.map((m) => Number(m.id));
}
