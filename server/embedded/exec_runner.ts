/**
 * The embedded {@linkcode ExecRunner}: starts plans on this host, each in
 * the sandbox (`exec_sandbox.ts`) under the user's own exec directory, and
 * keeps every live run so that closing the runner kills them all.
 *
 * @module
 */
import type { ExecPlan, ExecRun, ExecRunner } from "../backend/exec.ts";
import type { ExecConfig } from "../exec/exec_config.ts";
import { RequestError } from "../errors.ts";
import type { GroupSignaller } from "./exec_group_signaller.ts";
import { ExecProcess } from "./exec_process.ts";
import type { ExecSandbox } from "./exec_sandbox.ts";
import { checkProgramExists, resolveWorkDir } from "./exec_workdir.ts";

/** How long closing waits for killed runs to end. */
const _CLOSE_WAIT_MS = 5_000;

/** Runs plans on this host. */
export class EmbeddedExecRunner implements ExecRunner, AsyncDisposable {
  readonly node: string;
  #config: ExecConfig;
  #sandbox: ExecSandbox;
  #signaller: GroupSignaller;
  #live = new Set<ExecProcess>();
  #closing: Promise<void> | undefined;

  constructor(
    node: string,
    parts: { config: ExecConfig; sandbox: ExecSandbox; signaller: GroupSignaller },
  ) {
    this.node = node;
    this.#config = parts.config;
    this.#sandbox = parts.sandbox;
    this.#signaller = parts.signaller;
  }

  async start(plan: ExecPlan): Promise<ExecRun> {
    if (this.#closing) throw new RequestError("closed", "the server is shutting down");
    const c = this.#config;
    const argv = "shell" in plan.command
      ? [c.shellPath, "-c", plan.command.shell]
      : [...plan.command.argv];
    if (argv.length === 0 || argv[0] === "") {
      throw new RequestError("bad_request", "the command name is empty");
    }
    const userDir = await Deno.realPath(await this.#sandbox.userDir(plan.user));
    await checkProgramExists(argv[0]!, plan.env.PATH ?? "", c.sandbox ? userDir : null);
    const cwd = await resolveWorkDir(userDir, plan.cwd);
    if (this.#closing) throw new RequestError("closed", "the server is shutting down");
    const proc = ExecProcess.spawn(
      this.#sandbox.launch({ argv, userDir, cwd, caps: plan.caps, env: plan.env }),
      {
        node: this.node,
        argv,
        cwd,
        timeoutMs: plan.timeoutMs,
        signaller: this.#signaller,
      },
    );
    this.#live.add(proc);
    void proc.outcome.then(() => this.#live.delete(proc)); // floating-ok: outcome never rejects
    return proc;
  }

  /** Kills every live run (`shutdown`) and waits, bounded, for them to end. Idempotent. */
  close(): Promise<void> {
    return this.#closing ??= (async () => {
      for (const p of this.#live) p.kill("shutdown");
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.allSettled([...this.#live].map((p) => p.outcome)),
        new Promise((r) => (timer = setTimeout(r, _CLOSE_WAIT_MS))),
      ]);
      clearTimeout(timer);
    })();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
