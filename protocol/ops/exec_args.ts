/**
 * The argument schemas of the exec operations (PROTOCOL.md "Operations:
 * exec"), which the server validates requests with. Kept apart from
 * `exec.ts` so that the client, which needs only the names and types, does
 * not load zod.
 *
 * @module
 */
import { z } from "zod";
import { fitsUtf8 } from "../text.ts";
import {
  EXEC_NODES,
  EXEC_RUN,
  EXEC_SIGNAL,
  EXEC_SIGNALS,
  EXEC_STDERR,
  TOKEN_PATTERN,
} from "./exec.ts";

const _NO_NUL = (s: string) => !s.includes("\0");
const _TOKEN = z.string().regex(TOKEN_PATTERN, "8–64 of A-Z a-z 0-9 _ -");

/** Argument schema of each exec operation. */
export const EXEC_ARGS = {
  [EXEC_RUN]: z.object({
    token: _TOKEN,
    argv: z.array(z.string().refine(_NO_NUL, "contains NUL")).min(1).max(4096).optional(),
    shell: z.string().min(1).refine(_NO_NUL, "contains NUL").optional(),
    cwd: z.string().refine((c) => fitsUtf8(c, 4096), "at most 4096 UTF-8 bytes")
      .refine(_NO_NUL, "contains NUL").optional(),
    timeoutMs: z.number().int().min(1).optional(),
    /** The node to run on (cluster mode); this node when absent. */
    node: z.string().min(1).max(256).refine(_NO_NUL, "contains NUL").optional(),
  }).strict(),
  [EXEC_NODES]: z.object({}),
  [EXEC_STDERR]: z.object({ token: _TOKEN }),
  [EXEC_SIGNAL]: z.object({ token: _TOKEN, signal: z.enum(EXEC_SIGNALS) }),
} as const;

/** The token alone, read first from any exec request (other fields ignored). */
export const EXEC_TOKEN_ARGS: z.ZodType<{ token: string }> = z.object({ token: _TOKEN });
