/**
 * Argument readers for the file operations: each checks one field of a
 * request's `args` and throws a `bad_request` naming it.
 *
 * @module
 */
import type { Json } from "../../protocol/messages.ts";
import { RequestError } from "../errors.ts";
import { parseRemotePath, PathError } from "./remote_path.ts";

function _obj(args: Json): Record<string, unknown> {
  if (typeof args !== "object" || args === null || Array.isArray(args)) {
    throw new RequestError("bad_request", "arguments must be an object");
  }
  return args as Record<string, unknown>;
}

/** Reads a path argument (relative to `cwd`); `fallback` when absent. */
export function pathArg(
  cwd: readonly string[],
  args: Json,
  key: string,
  fallback?: string,
): string[] {
  const v = _obj(args)[key] ?? fallback;
  if (v === undefined) throw new RequestError("bad_request", `${key} is required`);
  try {
    return parseRemotePath(v, cwd);
  } catch (e) {
    if (e instanceof PathError) {
      throw new RequestError("bad_request", `${key}: ${e.message}`, { cause: e });
    }
    throw e;
  }
}

/** Reads an optional boolean (default false). */
export function boolArg(args: Json, key: string): boolean {
  const v = _obj(args)[key];
  if (v === undefined || v === null) return false;
  if (typeof v !== "boolean") throw new RequestError("bad_request", `${key} must be true or false`);
  return v;
}

/** Reads a non-negative safe integer; `fallback` when absent. */
export function intArg(args: Json, key: string, fallback?: number): number {
  const v = _obj(args)[key] ?? fallback;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new RequestError("bad_request", `${key} must be a non-negative integer`);
  }
  return v;
}

/** Reads an optional number (undefined when absent). */
export function optIntArg(args: Json, key: string): number | undefined {
  const v = _obj(args)[key];
  return v === undefined || v === null ? undefined : intArg(args, key);
}

/** Reads a lower-case hex SHA-256. */
export function shaArg(args: Json, key: string): string {
  const v = _obj(args)[key];
  if (typeof v !== "string" || !/^[0-9a-f]{64}$/.test(v)) {
    throw new RequestError("bad_request", `${key} must be 64 lower-case hex digits (SHA-256)`);
  }
  return v;
}

/** Reads an optional string matching `re`. */
export function optStringArg(args: Json, key: string, re: RegExp): string | undefined {
  const v = _obj(args)[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string" || !re.test(v)) {
    throw new RequestError("bad_request", `${key} is malformed`);
  }
  return v;
}
