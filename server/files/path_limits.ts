/**
 * Depth and length limits for paths an operation creates (`mkdir`, `put`,
 * `mv`): pure checks, given the longest path the store allows.
 *
 * @module
 */
import { RequestError } from "../errors.ts";
import { displayPath, MAX_DEPTH } from "./remote_path.ts";

const _encoder = new TextEncoder();

/** Bytes of `parts` joined by `/`. */
export function pathBytes(parts: readonly string[]): number {
  return _encoder.encode(parts.join("/")).byteLength;
}

/** A path for a message: long ones keep their start and end. */
export function shortPath(parts: readonly string[]): string {
  const s = displayPath(parts);
  return s.length <= 100 ? s : `${s.slice(0, 50)}…${s.slice(-40)}`;
}

/**
 * Checks that `parts` (a path about to be created) keeps within the depth
 * limit and `maxPathBytes`; `bad_request` naming the limit otherwise.
 */
export function checkNewPath(parts: readonly string[], maxPathBytes: number): void {
  if (parts.length > MAX_DEPTH) {
    throw new RequestError(
      "bad_request",
      `${shortPath(parts)} would be deeper than ${MAX_DEPTH} levels`,
    );
  }
  if (pathBytes(parts) > maxPathBytes) {
    throw new RequestError(
      "bad_request",
      `${shortPath(parts)} would be longer than ${maxPathBytes} bytes`,
    );
  }
}
