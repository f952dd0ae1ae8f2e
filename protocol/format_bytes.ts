/**
 * Byte counts for people (`512 B`, `1.5 KiB`, `3.2 GiB`), used in error
 * messages on the server and in progress and listings on the client.
 *
 * @module
 */

const _UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** Formats `n` bytes with binary units: whole bytes, one decimal above. */
export function formatBytes(n: number): string {
  let i = 0;
  let v = n;
  while (v >= 1024 && i < _UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${Math.round(v)} B` : `${v.toFixed(1)} ${_UNITS[i]}`;
}
