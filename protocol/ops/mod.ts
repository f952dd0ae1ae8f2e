/**
 * The operation catalogue: for each feature, its operation and event names,
 * the schema of each operation's arguments, and the reply and event payload
 * types. The server validates arguments and registers handlers by these
 * names; the client sends them.
 *
 * @module
 */
export * from "./chat.ts";
export * from "./exec.ts";
export * from "./files.ts";
