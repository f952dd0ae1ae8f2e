/**
 * Protocol constants and default limits (PROTOCOL.md §9).
 *
 * @module
 */

/** The protocol version this implementation speaks. */
export const PROTOCOL_VERSION = 2;

/** Largest header accepted, in bytes (64 KiB). Not negotiable. */
export const MAX_HEADER = 64 * 1024;

/** Default largest body, in bytes (1 MiB). Negotiated in the handshake. */
export const DEFAULT_MAX_BODY = 1024 * 1024;

/** Absolute ceiling for a negotiated body limit (16 MiB). */
export const MAX_BODY_CEILING = 16 * 1024 * 1024;

/** Length of the frame MAC trailer in bytes (HMAC-SHA256). */
export const MAC_LENGTH = 32;

/** Length of a handshake nonce in bytes. */
export const NONCE_LENGTH = 32;

/** Length of a user key in bytes (256 bits). */
export const KEY_LENGTH = 32;

/** Default initial receive window per stream (4 MiB). */
export const DEFAULT_STREAM_WINDOW = 4 * 1024 * 1024;

/** Default initial receive window per connection (16 MiB). */
export const DEFAULT_CONNECTION_WINDOW = 16 * 1024 * 1024;

/** Largest window either side may advertise or accumulate (2^31 - 1). */
export const MAX_WINDOW = 2 ** 31 - 1;

/** Default cap on concurrently open streams per connection. */
export const DEFAULT_MAX_STREAMS = 256;

/** Bulk data is sent in chunks of at most this many bytes (256 KiB). */
export const DEFAULT_CHUNK = 256 * 1024;
