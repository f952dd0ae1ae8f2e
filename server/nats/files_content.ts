/**
 * Content addressing of the NATS files backend: one stored copy per content.
 * `c.<sha256>` in `parley_fs` names the chunk set that holds the bytes of that
 * SHA-256 ({@linkcode ContentRecord}); a finished upload whose content is
 * already stored points its index entry at that chunk set and drops its own
 * copy. Index entries name the chunk set they read (`g`), so any number of
 * paths, of any users, share one copy, and removing a path never touches the
 * bytes.
 *
 * References are not counted (a counter would need a CAS per change);
 * the GC sweep derives them by a mark-and-sweep over the index and the upload
 * records (`files_gc.ts`). What keeps a sweep from freeing content that an
 * upload is adopting at that moment: the upload first rewrites the content
 * record with {@linkcode casWrite} (a new revision), then writes its index
 * entry; the sweep frees content only when the record still has the revision
 * it saw unreferenced a grace period earlier, and deletes the record with CAS
 * at that revision before it purges a byte. Either the adoption or the
 * deletion wins, never both: a losing upload stores its own copy instead.
 *
 * @module
 */
import { type NatsFilesCtx, storedBytes } from "./files_ctx.ts";
import { casJson, readKey } from "./files_cas.ts";

/** What `c.<sha256>` holds. */
export interface ContentRecord {
  /** The chunk set holding the bytes. */
  gen: string;
  size: number;
  /** When an upload last adopted this content (ms since the epoch; informative). */
  used: number;
}

/** Key of the content record of `sha256` (lower-case hex). */
export function contentKey(sha256: string): string {
  return `c.${sha256}`;
}

const _TRIES = 4;

/**
 * The chunk set a finished upload of `size` bytes with `sha256`, stored in
 * `own`, should reference: the stored copy of that content if there is an
 * intact one (adopted), else `own` (recorded as the copy of that content).
 * Under heavy contention it may return `own` without recording it: correct,
 * just not deduplicated.
 */
export async function adoptContent(
  ctx: NatsFilesCtx,
  sha256: string,
  size: number,
  own: string,
): Promise<string> {
  const key = contentKey(sha256);
  for (let i = 0; i < _TRIES; i++) {
    const cur = await readKey<ContentRecord>(ctx, key);
    const c = cur.value;
    if (c?.gen === own) return own;
    if (c && c.size === size && await storedBytes(ctx, c.gen) === size) {
      if (await casJson(ctx, key, { ...c, used: Date.now() }, cur.rev) !== undefined) return c.gen;
      continue;
    }
    // No record, a deleted one, or one whose bytes are gone: this upload's copy becomes the content.
    const next: ContentRecord = { gen: own, size, used: Date.now() };
    if (await casJson(ctx, key, next, cur.rev) !== undefined) return own;
  }
  return own;
}
