/**
 * The argument schemas of every operation in the catalogue, for the server,
 * which validates requests with them. Not re-exported by `mod.ts`: these
 * load zod, which the client does without.
 *
 * @module
 */
export * from "./chat_args.ts";
export * from "./exec_args.ts";
export * from "./files_args.ts";
