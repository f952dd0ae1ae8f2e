/**
 * Backend interfaces for exec (see `mod.ts`).
 *
 * @module
 */

/** To be filled in: the exec seam. */
// deno-lint-ignore no-empty-interface
export interface ExecBackend {}
