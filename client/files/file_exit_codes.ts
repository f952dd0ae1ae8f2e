/**
 * Exit codes of the one-shot file commands: the table every command shares
 * (`../../cli/exit_codes.ts`, docs/cli.md "Exit codes") and the client's
 * mapping of errors to it (`../exit_status.ts`), under their old names.
 *
 * @module
 */
export { EXIT, EXIT_HELP } from "../../cli/exit_codes.ts";
export { exitCodeFor } from "../exit_status.ts";
