/**
 * Parley wire protocol: framing, handshake, authenticated multiplexed sessions.
 *
 * @module
 */
export * from "./errors.ts";
export * from "./limits.ts";
export * from "./frame_codec.ts";
export * from "./messages.ts";
export * from "./auth.ts";
export * from "./transport.ts";
export * from "./mux_stream.ts";
export * from "./session.ts";
export * from "./handshake.ts";
export * from "./ops/mod.ts";
