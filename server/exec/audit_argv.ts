/**
 * Compact audit entries: a command line is cut to a byte budget before it
 * is recorded, with its real size kept, so whatever users send the audit
 * trail stays small.
 *
 * @module
 */

/** Byte budget for the argv of a refused request. */
export const REFUSED_ARGV_BYTES = 256;
/** Byte budget for the argv of a run. */
export const RUN_ARGV_BYTES = 4096;

/**
 * Cuts `argv` to at most `budget` UTF-8 bytes (the last kept argument may
 * be cut, marked with `…`); returns the kept part and, when anything was
 * cut, the real totals.
 */
export function compactArgv(
  argv: readonly string[],
  budget: number,
): { argv: string[]; argvTotal?: { args: number; bytes: number } } {
  const enc = new TextEncoder();
  let total = 0;
  for (const a of argv) total += enc.encode(a).byteLength;
  if (total <= budget) return { argv: [...argv] };
  const kept: string[] = [];
  let left = budget;
  for (const a of argv) {
    if (left <= 0) break;
    const bytes = enc.encode(a);
    if (bytes.byteLength <= left) {
      kept.push(a);
      left -= bytes.byteLength;
      continue;
    }
    // Cut on a character boundary.
    const cut = new TextDecoder().decode(bytes.subarray(0, left)).replace(/\uFFFD$/, "");
    kept.push(cut + "…");
    break;
  }
  return { argv: kept, argvTotal: { args: argv.length, bytes: total } };
}
