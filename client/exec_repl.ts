/**
 * Exec commands for the REPL (placeholder until implemented).
 *
 * @module
 */
import type { ReplCommand } from "./repl_command.ts";

/** REPL exec commands. */
export const EXEC_REPL_COMMANDS: ReplCommand[] = [];
