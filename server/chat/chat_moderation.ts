/**
 * Chat moderation: bans, mutes and notices. A ban is written to the
 * {@linkcode ChatPolicy}; every node hears of it through the policy's change
 * notices and closes the banned user's connections it holds, so a ban made
 * on one node takes effect on all of them.
 *
 * @module
 */
import type { ChatPolicy, Mute, PolicyChange } from "../backend/chat.ts";
import type { ClientContext } from "../context.ts";
import { RequestError } from "../errors.ts";
import type { ClientDirectory } from "../feature.ts";
import type { Logger } from "../log.ts";
import { CHAT_NOTICE } from "../../protocol/ops/chat.ts";

/** Moderation on one node. */
export class ChatModeration {
  #policy: ChatPolicy;
  #clients: ClientDirectory;
  #log: Logger;
  #stop: (() => void) | undefined;

  constructor(deps: { policy: ChatPolicy; clients: ClientDirectory; log: Logger }) {
    this.#policy = deps.policy;
    this.#clients = deps.clients;
    this.#log = deps.log;
    this.#stop = deps.policy.subscribe((c) => this.#changed(c));
  }

  /** Banned user names. */
  bans(): string[] {
    return this.#policy.bans();
  }

  /**
   * Bans `user` (every node closes their connections when it hears of it);
   * returns how many connections of theirs this node had.
   */
  async ban(user: string, by: string, reason?: string): Promise<number> {
    const n = this.#clients.byUser(user).length;
    await this.#policy.setBan(user, { by, ...(reason ? { reason } : {}) });
    this.#log.info("user banned", { user, by });
    return n;
  }

  /** Lifts `user`'s ban; `not_found` when there is none. */
  async unban(user: string): Promise<void> {
    if (!this.#policy.ban(user)) throw new RequestError("not_found", `${user} is not banned`);
    await this.#policy.setBan(user, undefined);
  }

  /** Mutes `user` or (undefined) unmutes them. */
  async mute(user: string, mute: Mute | undefined): Promise<void> {
    await this.#policy.setMute(user, mute);
  }

  /** Tells every connection of `user` on this node something (moderation notices). */
  notify(user: string, text: string): void {
    for (const ctx of this.#clients.byUser(user)) ctx.session.emit(CHAT_NOTICE, { text });
  }

  /** Stops listening to policy changes. Idempotent. */
  close(): void {
    this.#stop?.();
    this.#stop = undefined;
  }

  #changed(change: PolicyChange): void {
    if (change.kind !== "ban" || !change.ban) return;
    const { by, reason } = change.ban;
    for (const ctx of this.#clients.byUser(change.user)) {
      this.#close(ctx, `you were banned by ${by}${_why(reason)}`);
    }
  }

  /** Closes a connection with a `forbidden` error; the close runs on, and its failure is logged. */
  #close(ctx: ClientContext, why: string): void {
    void ctx.session.close(new RequestError("forbidden", why)).catch((e: unknown) => {
      this.#log.error("cannot close a banned user's connection", {
        user: ctx.user.name,
        error: (e as Error).message,
      });
    });
  }
}

function _why(reason: string | undefined): string {
  return reason ? `: ${reason}` : "";
}
