/**
 * The remote path grammar, as a pure function: a client path is turned into
 * a list of name components under the user's home, or refused. Suspicious
 * input is rejected, never repaired (docs/files.md "Paths").
 *
 * @example
 * ```ts
 * import { parseRemotePath } from "./remote_path.ts";
 * const parts = parseRemotePath("docs/a.txt", ["projects"]);
 * if (parts.join("/") !== "projects/docs/a.txt") throw new Error("unexpected");
 * ```
 *
 * @module
 */

/** Longest path accepted, in UTF-8 bytes. */
export const MAX_PATH_BYTES = 4096;
/** Longest name component accepted, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 255;
/** Deepest nesting accepted. */
export const MAX_DEPTH = 64;

/** A client path was refused; `message` says why in plain words. */
export class PathError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PathError";
  }
}

const _encoder = new TextEncoder();

// C0/C1 controls and DEL; backslash; characters that render as a slash; bidi
// controls, zero-width and other invisible format characters; line and
// paragraph separators; the BOM; private-use and unassigned code points are
// left to the NFC check and the file system.
const _FORBIDDEN =
  // deno-lint-ignore no-control-regex -- control characters are exactly what is refused
  /[\u0000-\u001f\u007f-\u009f\\\u2044\u2215\u29f8\uff0f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\u2028\u2029\ufeff\ufff9-\ufffb]/u;

function _describe(ch: string): string {
  const cp = ch.codePointAt(0)!;
  if (cp === 0) return "a NUL byte";
  if (ch === "\\") return "a backslash";
  return `the character U+${cp.toString(16).toUpperCase().padStart(4, "0")}`;
}

/** Checks one name component (a file or directory name). Throws {@linkcode PathError}. */
export function checkName(name: string): void {
  if (name === "." || name === "..") {
    throw new PathError(`"${name}" is not allowed in a path; name the directory instead`);
  }
  if (name === "") throw new PathError("empty name");
  if (_encoder.encode(name).byteLength > MAX_NAME_BYTES) {
    throw new PathError(`a name is longer than ${MAX_NAME_BYTES} bytes`);
  }
  if (name.includes("/")) throw new PathError("a name cannot contain /");
}

/**
 * Parses a client path relative to `cwd` (components under the home).
 * `~` or `~/…` starts at the home itself. Empty components from `a//b` or a
 * trailing `/` are ignored. Refused: non-strings, NUL and other control
 * characters, backslashes, slash look-alikes, invisible/bidi characters,
 * unpaired surrogates, text that is not in Unicode NFC, a leading `/`,
 * `.` and `..` components, names over 255 bytes, paths over 4096 bytes
 * or deeper than 64 levels.
 */
export function parseRemotePath(input: unknown, cwd: readonly string[] = []): string[] {
  if (typeof input !== "string") throw new PathError("a path must be a string");
  if (_encoder.encode(input).byteLength > MAX_PATH_BYTES) {
    throw new PathError(`the path is longer than ${MAX_PATH_BYTES} bytes`);
  }
  if (!input.isWellFormed()) throw new PathError("the path is not valid Unicode");
  const bad = _FORBIDDEN.exec(input);
  if (bad) throw new PathError(`the path contains ${_describe(bad[0])}`);
  if (input.normalize("NFC") !== input) {
    throw new PathError("the path is not in Unicode NFC form; normalise it first");
  }
  if (input.startsWith("/")) {
    throw new PathError("absolute paths are not allowed; use ~/PATH for your home directory");
  }
  let base: string[] = [...cwd];
  let rest = input;
  if (rest === "~" || rest.startsWith("~/")) {
    base = [];
    rest = rest.slice(1);
  }
  const parts = rest.split("/").filter((p) => p !== "");
  for (const p of parts) checkName(p);
  const out = [...base, ...parts];
  if (out.length > MAX_DEPTH) throw new PathError(`the path is deeper than ${MAX_DEPTH} levels`);
  const totalBytes = _encoder.encode(out.join("/")).byteLength;
  if (totalBytes > MAX_PATH_BYTES) {
    throw new PathError(`the path is longer than ${MAX_PATH_BYTES} bytes`);
  }
  return out;
}

/** Shows components as the client sees them: `~` or `~/a/b`. */
export function displayPath(parts: readonly string[]): string {
  return parts.length === 0 ? "~" : `~/${parts.join("/")}`;
}
