/**
 * File commands for the REPL (placeholder until implemented).
 *
 * @module
 */
import type { ReplCommand } from "./repl_command.ts";

/** REPL file commands. */
export const FILE_REPL_COMMANDS: ReplCommand[] = [];
