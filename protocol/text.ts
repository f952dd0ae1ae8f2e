/**
 * How the protocol measures text (PROTOCOL.md §1): limits on text count
 * Unicode code points, limits on paths, names and sizes count UTF-8 bytes.
 * JavaScript's `length` counts UTF-16 code units, which is neither, so every
 * limit goes through these.
 *
 * @module
 */

/**
 * Number of code points in `s` (a lone surrogate counts as one). Stops
 * counting once past `stopAfter`, so a huge string costs no more than the
 * limit it is checked against.
 */
export function codePointLength(s: string, stopAfter = Infinity): number {
  let n = 0;
  for (let i = 0; i < s.length && n <= stopAfter; i++, n++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
  }
  return n;
}

/** Whether `s` has at most `max` code points. */
export function fitsCodePoints(s: string, max: number): boolean {
  return s.length <= max || codePointLength(s, max) <= max;
}

/** Number of bytes `s` takes in UTF-8 (a lone surrogate takes 3, as U+FFFD). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/** Whether `s` takes at most `max` bytes in UTF-8. */
export function fitsUtf8(s: string, max: number): boolean {
  return s.length * 3 <= max || (s.length <= max && utf8Length(s) <= max);
}

/** `s` cut to at most `max` code points, never inside a surrogate pair. */
export function truncateCodePoints(s: string, max: number): string {
  if (s.length <= max) return s;
  let n = 0;
  let i = 0;
  while (i < s.length && n < max) {
    const c = s.charCodeAt(i);
    const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < s.length &&
      s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff;
    i += pair ? 2 : 1;
    n++;
  }
  return s.slice(0, i);
}
