/**
 * Backend interfaces for files (see `mod.ts`).
 *
 * @module
 */

/** To be filled in: the files seam. */
// deno-lint-ignore no-empty-interface
export interface FilesBackend {}
