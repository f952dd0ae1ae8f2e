/**
 * The one argument check of every operation: a request's `args` against the
 * operation's schema (from `protocol/ops/`). A request that does not fit is
 * refused with `bad_request` and a sentence a user can act on — what is
 * wrong with which value, in words — never the operation's or the field's
 * wire name or zod's own wording.
 *
 * @module
 */
import type { z } from "zod";
import type { Json } from "../protocol/messages.ts";
import { RequestError } from "./errors.ts";

/** What each argument is, in words, per operation family (`chat`, `file`, `exec`). */
const _NOUNS: Record<string, Record<string, string>> = {
  chat: {
    room: "room name",
    to: "user name",
    user: "user name",
    text: "message text",
    key: "message key",
    id: "message id",
    after: "message id",
    before: "message id",
    limit: "number of messages",
    format: "time format",
    reason: "reason",
    minutes: "number of minutes",
    file: "file reference",
  },
  file: {
    path: "path",
    from: "path to move",
    to: "destination path",
    shared: "share id",
    sha256: "SHA-256",
    size: "size",
    offset: "offset",
    mtime: "modification time",
    tag: "upload tag",
  },
  exec: {
    argv: "command",
    shell: "shell line",
    cwd: "working directory",
    timeoutMs: "timeout",
    token: "run token",
    signal: "signal",
    node: "node name",
  },
};

/** Arguments whose meaning differs in one operation. */
const _OP_NOUNS: Record<string, Record<string, string>> = {
  "chat.rooms": { after: "room name" },
  "chat.who": { after: "user name" },
};

/** The words for the argument at `path` of `op`. */
function _noun(op: string, path: readonly PropertyKey[]): string {
  const key = String(path[0] ?? "");
  const family = op.split(".")[0] ?? "";
  return _OP_NOUNS[op]?.[key] ?? _NOUNS[family]?.[key] ?? `argument ${JSON.stringify(key)}`;
}

/** The value at `path` in `args`, as a short quoted text. */
function _shown(args: Json, path: readonly PropertyKey[]): string {
  let v: unknown = args;
  for (const k of path) {
    v = v !== null && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  }
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 60 ? `${text.slice(0, 59)}…` : text;
}

/** zod's own messages start with a capital ("Invalid input: …"); the schemas' own do not. */
function _zodWording(message: string): boolean {
  return /^[A-Z]/.test(message);
}

/** A plain sentence for the first problem zod found in `args`. */
export function describeIssue(op: string, issue: z.core.$ZodIssue, args: Json): string {
  const path = issue.path;
  if (path.length === 0) {
    if (issue.code === "unrecognized_keys") {
      return `unknown argument${issue.keys.length === 1 ? "" : "s"} ${issue.keys.join(", ")}; ` +
        "the client may be newer than the server";
    }
    return _zodWording(issue.message) ? "the request's arguments do not fit" : issue.message;
  }
  const noun = _noun(op, path);
  const value = _shown(args, path);
  const message = issue.message;
  const missing = issue.code === "invalid_type" && value === "undefined";
  if (missing || message === "required") return `the ${noun} is missing`;
  if (!_zodWording(message)) {
    if (message.startsWith("must ")) return `the ${noun} ${message}`;
    if (message.startsWith("not a valid ")) return `${value} is ${message}`;
    if (message.startsWith("at most ")) return `the ${noun} is too long (${message})`;
    if (/^(no NUL|contains NUL)/.test(message)) return `the ${noun} contains a NUL character`;
    return `bad ${noun} ${value}: ${message}`;
  }
  switch (issue.code) {
    case "invalid_type":
      return `the ${noun} must be ${
        /^[aeiou]/.test(issue.expected) ? "an" : "a"
      } ${issue.expected}`;
    case "too_big":
      return issue.origin === "number" || issue.origin === "int" || issue.origin === "bigint"
        ? `the ${noun} must be ${
          issue.inclusive === false ? "less than" : "at most"
        } ${issue.maximum}`
        : `the ${noun} is too long (at most ${issue.maximum}${
          issue.origin === "string" ? " characters" : " items"
        })`;
    case "too_small":
      return issue.origin === "number" || issue.origin === "int" || issue.origin === "bigint"
        ? `the ${noun} must be ${
          issue.inclusive === false ? "more than" : "at least"
        } ${issue.minimum}`
        : `the ${noun} is empty`;
    case "invalid_value":
      return `bad ${noun} ${value}: use one of ${issue.values.map(String).join(", ")}`;
    default:
      return `bad ${noun} ${value}`;
  }
}

/**
 * Parses `args` with `schema`; throws `bad_request` with a sentence about
 * the first problem zod found (see {@linkcode describeIssue}) when they do not fit.
 */
export function parseArgs<S extends z.ZodType>(op: string, schema: S, args: Json): z.output<S> {
  const r = schema.safeParse(args);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new RequestError(
    "bad_request",
    issue ? describeIssue(op, issue, args) : "the request's arguments do not fit",
  );
}
