/**
 * Named errors of the exec feature (request-level refusals are
 * `RequestError`s with protocol codes; these are the server's own).
 *
 * @module
 */

/** The sandbox cannot be used (bwrap missing, or no namespaces); `--exec` refuses to start. */
export class ExecSandboxError extends Error {
  /** Stable code. */
  readonly code = "exec_sandbox_unavailable";
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "ExecSandboxError";
  }
}
