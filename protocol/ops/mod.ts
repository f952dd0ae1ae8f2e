/**
 * The operation catalogue: for each feature, its operation and event names,
 * the types of each operation's arguments, and the reply and event payload
 * types. The server registers handlers by these names; the client sends
 * them. The argument schemas the server validates with are in `args.ts`,
 * kept out of this module so that importing it does not load zod.
 *
 * @module
 */
export * from "./chat.ts";
export * from "./exec.ts";
export * from "./files.ts";
