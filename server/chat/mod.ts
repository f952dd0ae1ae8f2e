/**
 * The chat feature: rooms, direct messages, history, presence, moderation
 * and flood control (PROTOCOL.md "Operations: chat", docs/chat.md).
 * History lives in `<data>/chat/`.
 *
 * @module
 */
import { join } from "@std/path";
import { ProtocolError } from "../../protocol/errors.ts";
import type { Feature, FeatureDeps } from "../feature.ts";
import { parseChatConfig } from "./chat_config.ts";
import { registerChatOps } from "./chat_ops.ts";
import { ChatService } from "./chat_service.ts";
import { ChatState } from "./chat_state.ts";
import { ChatStore } from "./chat_store.ts";

/** Creates the chat feature: loads history and state from the data dir. */
export async function createChatFeature(deps: FeatureDeps): Promise<Feature> {
  const config = parseChatConfig(deps.config);
  const dir = join(deps.dataDir, "chat");
  const store = await ChatStore.open(dir, {
    roomLimit: config.historyPerRoom,
    dmLimit: config.dmHistoryPerUser,
    log: deps.log,
  });
  const state = await ChatState.open(join(dir, "state.json"), deps.log);
  const chat = new ChatService({
    config,
    store,
    state,
    users: deps.users,
    clients: deps.clients,
    log: deps.log,
  });
  let closed = false;
  return {
    name: "chat",
    register: (registry) => registerChatOps(registry, chat),
    admit(user) {
      // A banned user gets no session, and no request of a session is run after a ban.
      const ban = state.ban(user.name);
      if (ban) {
        throw new ProtocolError(
          "forbidden",
          `you are banned from this server${ban.reason ? `: ${ban.reason}` : ""}`,
        );
      }
    },
    onLogin: (ctx) => chat.login(ctx),
    onLogout: (ctx) => chat.logout(ctx),
    async close() {
      if (closed) return;
      closed = true;
      await state.flush();
      await store.close();
    },
  };
}
