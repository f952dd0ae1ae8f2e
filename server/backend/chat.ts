/**
 * Backend interfaces for chat (see `mod.ts`).
 *
 * @module
 */

/** To be filled in: the chat seam. */
// deno-lint-ignore no-empty-interface
export interface ChatBackend {}
