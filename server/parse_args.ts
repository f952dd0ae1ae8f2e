/**
 * The one argument check of every operation: a request's `args` against the
 * operation's schema (from `protocol/ops/`).
 *
 * @module
 */
import type { z } from "zod";
import type { Json } from "../protocol/messages.ts";
import { RequestError } from "./errors.ts";

/**
 * Parses `args` with `schema`; throws `bad_request` with the message
 * `<op>: <field>: <problem>` (the first problem zod found) when they do not fit.
 */
export function parseArgs<S extends z.ZodType>(op: string, schema: S, args: Json): z.output<S> {
  const r = schema.safeParse(args);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue?.path.length ? `${issue.path.join(".")}: ` : "";
  throw new RequestError("bad_request", `${op}: ${where}${issue?.message ?? "invalid arguments"}`);
}
