/**
 * Reading a JSON config file (the server's `<data>/config.json`, the
 * client's `config.json`) with errors that name the file and the line, and
 * never echo the file's text (it may hold a key).
 *
 * @example
 * ```ts
 * import { jsonProblem } from "./config_file.ts";
 *
 * try {
 *   JSON.parse('{\n  "a": 1,\n}');
 * } catch (e) {
 *   console.log(jsonProblem('{\n  "a": 1,\n}', e)); // "line 3: expected double-quoted property name"
 * }
 * ```
 *
 * @module
 */

/** Raised for a config file that cannot be read or parsed; the message names the file. */
export class ConfigFileError extends Error {
  /** The file. */
  readonly path: string;

  constructor(path: string, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ConfigFileError";
    this.path = path;
  }
}

/**
 * `line N: what is wrong` for a `JSON.parse` error on `text`, without the
 * excerpt of the text that V8 puts into some messages.
 */
export function jsonProblem(text: string, e: unknown): string {
  const raw = e instanceof Error ? e.message : String(e);
  let line: number | undefined;
  const lc = /\(line (\d+) column \d+\)/.exec(raw);
  const pos = /at position (\d+)/.exec(raw);
  const at = lc ? undefined : pos ? Number(pos[1]) : _errorOffset(text);
  if (lc) line = Number(lc[1]);
  else if (at !== undefined) line = text.slice(0, at).split("\n").length;
  let what = raw
    .replace(/\s*\(line \d+ column \d+\)/, "")
    .replace(/\s*(in JSON )?at position \d+/, "")
    // "Unexpected token 'x', …TEXT… is not valid JSON": keep the token, never the text.
    .replace(/^(Unexpected token '[\s\S]'),[\s\S]*$/, "$1")
    .replace(/^([^,]*),[\s\S]*is not valid JSON$/, "$1")
    .trim();
  what = what.replace("token '\n'", "line break").replace("token '\r'", "line break");
  if (what === "") what = "not valid JSON";
  if (what === "Unexpected end of JSON input") what = "the file ends too early";
  what = what.charAt(0).toLowerCase() + what.slice(1);
  return line === undefined ? what : `line ${line}: ${what}`;
}

/**
 * Reads and parses the JSON file at `path`. Resolves to undefined when it does
 * not exist; throws {@linkcode ConfigFileError} (`config PATH: line N: …;
 * HINT`) when it cannot be read or is not a JSON object.
 */
export async function readJsonConfig(
  path: string,
  hint: string,
): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    const why = (e as Error).message.replace(/\s*\(os error \d+\).*$/s, "").toLowerCase();
    throw new ConfigFileError(path, `config ${path}: cannot read it (${why}); ${hint}`, {
      cause: e,
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ConfigFileError(path, `config ${path}: ${jsonProblem(text, e)}; ${hint}`, {
      cause: e,
    });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigFileError(
      path,
      `config ${path}: must hold a JSON object ({ … }); ${hint}`,
    );
  }
  return value as Record<string, unknown>;
}

/**
 * Offset of the first character a JSON parser would stop at in `text` (its
 * length when the text ends too early), or undefined when it is valid.
 */
function _errorOffset(text: string): number | undefined {
  let i = 0;
  const ws = () => {
    while (i < text.length && " \t\r\n".includes(text[i]!)) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const lit = (word: string) => {
    for (const c of word) if (text[i++] !== c) (i--, fail());
  };
  const str = () => {
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text[i]! < " ") fail();
      i += text[i] === "\\" ? 2 : 1;
    }
    if (i >= text.length) fail();
    i++;
  };
  const value = (depth: number): void => {
    if (depth > 1000) fail();
    ws();
    const c = text[i];
    if (c === "{" || c === "[") {
      const close = c === "{" ? "}" : "]";
      i++;
      ws();
      if (text[i] === close) return void i++;
      while (true) {
        if (c === "{") {
          ws();
          if (text[i] !== '"') fail();
          str();
          ws();
          if (text[i] !== ":") fail();
          i++;
        }
        value(depth + 1);
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === close) return void i++;
        else fail();
      }
    }
    if (c === '"') return str();
    if (c === "t") return lit("true");
    if (c === "f") return lit("false");
    if (c === "n") return lit("null");
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m || m[0] === "") fail();
    i += m![0].length;
  };
  try {
    value(0);
    ws();
    return i < text.length ? i : undefined;
  } catch (at) {
    if (typeof at !== "number") throw at;
    return Math.min(at, text.length);
  }
}
