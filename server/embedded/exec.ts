/**
 * The embedded exec backend (see `../backend/exec.ts`): commands run on this
 * host in the bubblewrap sandbox, this node is the only one, and the audit
 * trail is a bounded file. Disabled exec costs nothing: no probe, no
 * directories, no file.
 *
 * @module
 */
import type {
  ExecAudit,
  ExecBackend,
  ExecNode,
  ExecPlan,
  ExecRouter,
  ExecRun,
  ExecRunner,
} from "../backend/exec.ts";
import type { ServerConfig } from "../config.ts";
import { RequestError } from "../errors.ts";
import { parseExecConfig } from "../exec/exec_config.ts";
import type { Logger } from "../log.ts";
import { EmbeddedExecAudit } from "./exec_audit.ts";
import { EmbeddedExecRunner } from "./exec_runner.ts";
import { prepareExecHost } from "./exec_startup.ts";

/** The name the embedded node goes by (`parley exec --node local`). */
export const LOCAL_NODE = "local";

/** An embedded exec backend; `close()` kills live runs, then closes the audit log. */
export type EmbeddedExecBackend = ExecBackend & AsyncDisposable & { close(): Promise<void> };

/**
 * Opens the embedded exec backend from `config.features.exec`. Throws
 * `ExecSandboxError` when the sandbox is wanted but cannot run, and a
 * `TypeError` for invalid settings or an exec root that overlaps the data
 * dir (symlinks followed).
 */
export async function openEmbeddedExec(
  config: Pick<ServerConfig, "dataDir" | "features">,
  log: Logger,
): Promise<EmbeddedExecBackend> {
  const c = parseExecConfig(config.features.exec, config.dataDir);
  if (!c.enabled) return _disabled();
  const { sandbox, signaller } = await prepareExecHost(c, config.dataDir, log);
  const audit = await EmbeddedExecAudit.open(c.auditLog, {
    maxBytes: c.auditMaxBytes,
    refusedPerMinute: c.auditRefusedPerMinute,
  });
  log.info("exec enabled", {
    shell: c.shell,
    allow: c.shell ? "any" : c.allow,
    root: c.root,
    sandbox: c.sandbox,
    network: c.network,
    runAs: sandbox.drop ? `${sandbox.drop.uid}:${sandbox.drop.gid}` : "server user",
  });
  const runner = new EmbeddedExecRunner(LOCAL_NODE, { config: c, sandbox, signaller });
  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      try {
        await runner.close();
      } finally {
        await audit.close();
      }
    })();
  return {
    runner,
    router: localRouter(runner, true),
    audit,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * The router of a single node: `list()` is this node, `open()` runs on it,
 * and any other name is `not_found` at once.
 */
export function localRouter(runner: ExecRunner, exec: boolean, name = LOCAL_NODE): ExecRouter {
  return {
    local: name,
    list: (): Promise<ExecNode[]> => Promise.resolve([{ name, exec, local: true }]),
    open: (node: string, plan: ExecPlan): Promise<ExecRun> => {
      if (node !== name) {
        return Promise.reject(
          new RequestError("not_found", `node ${JSON.stringify(node)} is not connected`),
        );
      }
      return runner.start(plan);
    },
  };
}

function _disabled(): EmbeddedExecBackend {
  const runner: ExecRunner = {
    start: () =>
      Promise.reject(
        new RequestError(
          "forbidden",
          "remote exec is disabled on this server (start it with `parley serve --exec`)",
        ),
      ),
  };
  const audit: ExecAudit = { run: () => Promise.resolve(), refused: () => Promise.resolve() };
  const close = () => Promise.resolve();
  return {
    runner,
    router: localRouter(runner, false),
    audit,
    close,
    [Symbol.asyncDispose]: close,
  };
}
