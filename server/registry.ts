/**
 * Maps request operation names (`chat.send`, `file.put`, …) to handlers.
 * Features register their operations; the connection loop dispatches.
 *
 * @module
 */
import type { z } from "zod";
import type { Json } from "../protocol/messages.ts";
import type { MuxStream } from "../protocol/mux_stream.ts";
import type { ClientContext } from "./context.ts";
import { RequestError } from "./errors.ts";
import { parseArgs } from "./parse_args.ts";

/** Handles one operation. The resolved value becomes the reply's `data`. */
export type OpHandler = (
  ctx: ClientContext,
  args: Json,
  stream: MuxStream | undefined,
) => Promise<unknown>;

/** The operations the server understands. */
export class OpRegistry {
  #handlers = new Map<string, OpHandler>();

  /** Adds a handler; throws if `op` is already taken. */
  register(op: string, handler: OpHandler): void {
    if (this.#handlers.has(op)) throw new TypeError(`operation ${op} registered twice`);
    this.#handlers.set(op, handler);
  }

  /**
   * Adds a handler that receives `args` parsed by `schema` (the operation's
   * schema in `protocol/ops/`); arguments that do not fit get `bad_request`.
   */
  registerParsed<S extends z.ZodType>(
    op: string,
    schema: S,
    handler: (
      ctx: ClientContext,
      args: z.output<S>,
      stream: MuxStream | undefined,
    ) => Promise<unknown>,
  ): void {
    this.register(op, (ctx, args, stream) => handler(ctx, parseArgs(op, schema, args), stream));
  }

  /** Names of all registered operations. */
  get ops(): string[] {
    return [...this.#handlers.keys()].sort();
  }

  /** Runs the handler for `op`, or rejects with `unknown_op`. */
  dispatch(
    ctx: ClientContext,
    op: string,
    args: Json,
    stream: MuxStream | undefined,
  ): Promise<unknown> {
    const handler = this.#handlers.get(op);
    if (!handler) {
      return Promise.reject(
        new RequestError("unknown_op", `unknown operation ${JSON.stringify(op)}; see PROTOCOL.md`),
      );
    }
    return handler(ctx, args, stream);
  }
}
