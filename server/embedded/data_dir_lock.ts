/**
 * The data dir's lock: a running embedded server (and `parley cluster
 * import`, which reads the data dir) holds an exclusive advisory lock on
 * `parley.lock` in the data dir for as long as it runs, so no second one
 * opens the same data. The kernel drops the lock when the process ends,
 * however it ends. `parley user` does not take it: it changes accounts
 * beside a running server on purpose.
 *
 * @module
 */
import { join } from "@std/path";

/** The data dir is held by another process. */
export class DataDirBusyError extends Error {
  constructor(readonly dataDir: string, readonly holder: string | undefined) {
    super(
      `the data dir ${dataDir} is in use by another Parley process${
        holder ? ` (${holder})` : ""
      }: a running \`parley serve\` or \`parley cluster import\`. Stop it first, then run this again`,
    );
    this.name = "DataDirBusyError";
  }
}

/** A held data-dir lock. */
export interface DataDirLock {
  /** Releases the lock. Idempotent. */
  close(): Promise<void>;
}

/**
 * Takes the data dir's lock for `what` (e.g. "parley serve"), creating the
 * data dir if needed; throws {@linkcode DataDirBusyError} at once when another
 * process holds it.
 */
export async function lockDataDir(dataDir: string, what: string): Promise<DataDirLock> {
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, "parley.lock");
  const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
  let held = false;
  try {
    held = await file.tryLock(true);
    if (!held) {
      const holder = (await Deno.readTextFile(path).catch(() => "")).trim().slice(0, 200);
      throw new DataDirBusyError(dataDir, holder || undefined);
    }
    // Who holds it, for the message another process prints.
    await file.truncate(0);
    const line = new TextEncoder().encode(`${what}, pid ${Deno.pid}\n`);
    for (let off = 0; off < line.byteLength;) off += await file.write(line.subarray(off));
  } catch (e) {
    file.close();
    throw e;
  }
  let closed = false;
  return {
    close() {
      if (!closed) {
        closed = true;
        file.close(); // releases the lock
      }
      return Promise.resolve();
    },
  };
}
