/**
 * The end of the current turn of the event loop, shared by everything that
 * waits for it in one turn. Work started one request at a time (a batch of
 * requests is handled with microtasks between them) and then released here
 * goes out together: one journal write for a batch of chat messages, one
 * socket write for a batch of cluster publishes.
 *
 * @module
 */
import { setImmediate } from "node:timers";

let _turn: Promise<void> | undefined;

/**
 * Resolves after the current turn of the event loop (its I/O callbacks and microtasks). Every
 * caller of one turn gets the same promise, so their continuations run one after the other, in
 * the order they asked, before anything of the next turn.
 */
export function endOfTurn(): Promise<void> {
  return _turn ??= new Promise((resolve) =>
    setImmediate(() => {
      _turn = undefined;
      resolve();
    })
  );
}
