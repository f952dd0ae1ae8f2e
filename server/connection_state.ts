/**
 * Typed per-connection state for one feature: a value per
 * {@linkcode ClientContext}, made on first use and gone with the connection
 * (a `WeakMap`, so nothing needs clearing at logout).
 *
 * Create one per feature instance, inside the feature's factory — never at
 * module level, so two servers in one process share nothing:
 *
 * @example
 * ```ts ignore
 * export function createFilesFeature(deps: FeatureDeps): Feature {
 *   const cwd = new ConnectionState<string[]>(() => []);
 *   // in a handler:  cwd.get(ctx)  /  cwd.set(ctx, ["docs"])
 * }
 * ```
 *
 * @module
 */
import type { ClientContext } from "./context.ts";

/** One feature's state for each connection. */
export class ConnectionState<T> {
  #values = new WeakMap<ClientContext, T>();
  #init: (ctx: ClientContext) => T;

  /** `init` makes the value for a connection the first time {@linkcode get} asks for it. */
  constructor(init: (ctx: ClientContext) => T) {
    this.#init = init;
  }

  /** The connection's value, made by `init` if it has none yet. */
  get(ctx: ClientContext): T {
    if (this.#values.has(ctx)) return this.#values.get(ctx) as T;
    const value = this.#init(ctx);
    this.#values.set(ctx, value);
    return value;
  }

  /** The connection's value, or undefined if none was made or set. */
  peek(ctx: ClientContext): T | undefined {
    return this.#values.get(ctx);
  }

  /** Replaces the connection's value. */
  set(ctx: ClientContext, value: T): void {
    this.#values.set(ctx, value);
  }

  /** Forgets the connection's value; the next {@linkcode get} makes a new one. */
  delete(ctx: ClientContext): boolean {
    return this.#values.delete(ctx);
  }
}
