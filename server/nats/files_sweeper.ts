/**
 * Runs the files GC sweep (`files_gc.ts`) every `everyMs` on the node that
 * holds the sweep lease `lease.gc` in `parley_fs` (taken with CAS that holds at
 * R3, `files_cas.ts`, held for
 * twice the interval and renewed by each sweep): one sweeper in the cluster
 * at a time, another node takes over when the holder stops renewing.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import type { NatsFilesCtx } from "./files_ctx.ts";
import { casJson, readKey } from "./files_cas.ts";

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
  const cur = await readKey<Lease>(ctx, "lease.gc");
  const now = Date.now();
  if (cur.value && cur.value.node !== ctx.node && cur.value.until > now) return false;
  return await casJson(ctx, "lease.gc", { node: ctx.node, until: now + holdMs }, cur.rev) !==
    undefined;
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
