/**
 * Cluster start-up errors, apart from the NATS client so `parley serve` can name them without
 * loading it on a single node.
 *
 * @module
 */

/** Start-up failure of cluster mode (NATS unreachable, too old, no JetStream): a clear message. */
export class NatsStartError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "NatsStartError";
  }
}
