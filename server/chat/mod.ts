/**
 * The chat feature: rooms, direct messages, history, presence, moderation
 * and flood control (PROTOCOL.md "Operations: chat", docs/chat.md). Policy
 * lives here; history, the live feed, moderation state and presence come
 * from the chat backend (`deps.backend.chat`, see `../backend/chat.ts`).
 *
 * @module
 */
import { ProtocolError } from "../../protocol/errors.ts";
import type { Backend } from "../backend/mod.ts";
import type { Feature, FeatureDeps } from "../feature.ts";
import { parseChatConfig } from "./chat_config.ts";
import { registerChatOps } from "./chat_ops.ts";
import { ChatService } from "./chat_service.ts";

/** What the chat feature needs: the chat and accounts backends, its config, the connections. */
export type ChatDeps = Pick<FeatureDeps, "config" | "clients" | "log"> & {
  backend: Pick<Backend, "chat" | "accounts">;
};

/** Creates the chat feature on the backend's chat part. */
export function createChatFeature(deps: ChatDeps): Promise<Feature> {
  const config = parseChatConfig(deps.config);
  const backend = deps.backend.chat;
  const chat = new ChatService({
    config,
    backend,
    accounts: deps.backend.accounts,
    clients: deps.clients,
    log: deps.log,
  });
  return Promise.resolve({
    name: "chat",
    register: (registry) => registerChatOps(registry, chat),
    admit(user) {
      // A banned user gets no session, and no request of a session is run after a ban.
      const ban = backend.policy.ban(user.name);
      if (ban) {
        throw new ProtocolError(
          "forbidden",
          `you are banned from this server${ban.reason ? `: ${ban.reason}` : ""}`,
        );
      }
    },
    onLogin: (ctx) => chat.login(ctx),
    onLogout: (ctx) => chat.logout(ctx),
    // the backend is closed by its owner (the server), after every feature
    close: () => chat.close(),
  });
}
