/**
 * Human-readable byte counts for messages (`1.5 GiB`).
 *
 * @module
 */

const _UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** Formats `n` bytes with binary units. */
export function formatBytes(n: number): string {
  let i = 0;
  let v = n;
  while (v >= 1024 && i < _UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${_UNITS[i]}`;
}
