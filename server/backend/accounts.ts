/**
 * Backend interfaces for accounts (see `mod.ts`).
 *
 * @module
 */

/** To be filled in: the accounts seam. */
// deno-lint-ignore no-empty-interface
export interface Accounts {}
