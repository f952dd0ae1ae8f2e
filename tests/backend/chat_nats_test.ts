/**
 * The chat backend contract against the cluster implementation
 * (`server/nats/chat.ts`), each store a fresh nats-server with JetStream
 * (`tests/cluster/nats_fixture.ts`); skipped when nats-server is missing.
 *
 * @module
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Logger } from "../../server/log.ts";
import { type NatsChat, openNatsChat } from "../../server/nats/chat.ts";
import { natsAvailable, startNatsServer } from "../cluster/nats_fixture.ts";
import { type ChatStoreOptions, runChatContract } from "./chat_contract.ts";

async function _store(options: ChatStoreOptions = {}) {
  const server = await startNatsServer();
  const log = new Logger({ level: "error", sink: () => {} });
  const open = new Set<{ chat: NatsChat; nc: NatsConnection }>();
  const closeOne = async (o: { chat: NatsChat; nc: NatsConnection }) => {
    if (!open.delete(o)) return;
    await o.chat.close();
    await o.nc.close();
  };
  return {
    async open() {
      const nc = await connect({ servers: server.urls });
      let chat: NatsChat;
      try {
        chat = await openNatsChat(nc, {
          node: "n1",
          historyPerRoom: options.historyPerRoom,
          dmHistory: options.dmHistoryPerUser,
          log,
        });
      } catch (e) {
        await nc.close();
        throw e;
      }
      const o = { chat, nc };
      open.add(o);
      return {
        log: chat.log,
        feed: chat.feed,
        policy: chat.policy,
        presence: chat.presence,
        [Symbol.asyncDispose]: () => closeOne(o),
      };
    },
    async [Symbol.asyncDispose]() {
      await Promise.allSettled([...open].map(closeOne));
      await server.close();
    },
  };
}

if (natsAvailable()) runChatContract("nats", _store);
