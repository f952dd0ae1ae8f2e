/**
 * Runs the files GC sweep (`files_gc.ts`) every `everyMs` on the node that
 * holds the sweep lease `lease.gc` in `parley_fs` (taken with CAS, held for
 * twice the interval and renewed by each sweep): one sweeper in the cluster
 * at a time, another node takes over when the holder stops renewing.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import { getJson, isConflict, type NatsFilesCtx } from "./files_ctx.ts";

/** A running sweeper. */
export interface Sweeper {
  /** Stops the timer and waits for a sweep in progress. */
  close(): Promise<void>;
}

interface Lease {
  node: string;
  until: number;
}

/** Takes or renews the sweep lease for this node; false when another node holds it. */
export async function takeSweepLease(ctx: NatsFilesCtx, holdMs: number): Promise<boolean> {
  const cur = await getJson<Lease>(ctx.kv, "lease.gc");
  const now = Date.now();
  if (cur && cur.value.node !== ctx.node && cur.value.until > now) return false;
  const next = JSON.stringify({ node: ctx.node, until: now + holdMs });
  try {
    if (cur) await ctx.kv.update("lease.gc", next, cur.rev);
    else await ctx.kv.create("lease.gc", next);
    return true;
  } catch (e) {
    if (isConflict(e)) return false;
    throw e;
  }
}

/** Starts sweeping every `everyMs` while this node holds the lease. */
export function startSweeper(
  ctx: NatsFilesCtx,
  o: { everyMs: number; sweep: () => Promise<unknown>; log?: Logger | undefined },
): Sweeper {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> = Promise.resolve();
  let closed = false;
  const tick = async () => {
    try {
      if (await takeSweepLease(ctx, 2 * o.everyMs)) await o.sweep();
    } catch (e) {
      o.log?.warn("files sweep failed", { error: String(e) });
    }
  };
  const arm = () => {
    if (closed) return;
    timer = setTimeout(() => {
      running = tick().finally(arm);
    }, o.everyMs);
  };
  arm();
  return {
    async close() {
      closed = true;
      clearTimeout(timer);
      await running;
    },
  };
}
