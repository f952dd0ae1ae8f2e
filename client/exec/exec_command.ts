/**
 * `parley exec [--node N] [--cwd DIR] [--timeout S] -- CMD ARGS…`: runs a
 * command on the server, streams its stdout to stdout and its stderr to
 * stderr, forwards this process's stdin and exits with the remote exit code
 * (128+n when a signal ended it), so it composes in shell pipelines.
 *
 * @module
 */
import { EXEC_FAILURE, EXIT, EXIT_BROKEN_PIPE, usageError } from "../../cli/exit_codes.ts";
import { parseFlags } from "../../cli/flags.ts";
import {
  CLIENT_BOOLEAN_FLAGS,
  CLIENT_FLAGS_HELP,
  CLIENT_STRING_FLAGS,
  credentialInput,
} from "../cli_util.ts";
import { CredentialError, resolveCredentials } from "../credentials.ts";
import { ParleyClient } from "../client.ts";
import { reportCliError } from "../exit_status.ts";
import { type ExecRequest, formatExecNodes, listExecNodes, RemoteExec } from "./exec_remote.ts";

const HELP = `Usage: parley exec [OPTIONS] [--] CMD [ARGS…]
       parley exec --list-nodes

Runs CMD with ARGS on the server (each argument passed literally, no shell),
streams its output and exits with its exit code (128+N when signal N ended it).
This command's stdin is forwarded to it until end of input.

Options:
  --cwd DIR        working directory, relative to the server's exec root
  --timeout S      kill the command after S seconds (server default when absent)
  --shell          send CMD ARGS… joined by spaces as one shell line
                   (only on servers started with --exec-shell)
  -n, --no-stdin   do not forward stdin (the command reads end of input)
  --node NAME      cluster node to run on; its own allow-list, sandbox and
                   limits apply, output streams back through the node you
                   connect to (default and \`local\`: the node you connect to)
  --list-nodes     list the nodes and whether they run commands, then exit
  -h, --help       show this help

Exit status: the command's, or 255 when it could not be run (connection,
wrong key, refused by the server's policy, …), 2 for a usage error, 141
when whoever reads the output stops early. Unlike the other commands
(docs/cli.md "Exit codes"), exec keeps the codes 1-254 for the command.
Ctrl-C (SIGINT) and SIGTERM are passed to the remote command.

Examples:
  parley exec -- uname -a
  parley exec -- wc -c < big.log
  parley exec --timeout 5 -- sleep 10; echo "exit $?"
  parley exec --node build-2 -- uname -n

${CLIENT_FLAGS_HELP}`;

/** Exit status for failures around the command rather than of it (as ssh does). */
export { EXEC_FAILURE };

async function _writeAll(w: Deno.FsFile | typeof Deno.stdout, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.byteLength) off += await w.write(bytes.subarray(off));
}

/** Runs `parley exec`. */
export async function run(args: string[]): Promise<number> {
  const parsed = parseFlags(args, {
    string: [...CLIENT_STRING_FLAGS, "cwd", "timeout", "node"],
    boolean: [...CLIENT_BOOLEAN_FLAGS, "shell", "no-stdin", "list-nodes"],
    alias: { n: "no-stdin" },
    stopEarly: true,
  }, HELP);
  if ("exitCode" in parsed) return parsed.exitCode;
  const f = parsed.flags;
  const command = [...f._.map(String), ...((f["--"] as string[] | undefined) ?? [])];
  if (f["list-nodes"]) return await _listNodes(f);
  if (command.length === 0) {
    return usageError("exec", "name a command to run (parley exec -- CMD ARGS…)");
  }
  const request: ExecRequest = f.shell ? { shell: command.join(" ") } : { argv: command };
  if (f.cwd !== undefined) request.cwd = String(f.cwd);
  if (f.timeout !== undefined) {
    const s = Number(f.timeout);
    if (!Number.isFinite(s) || s <= 0) {
      return usageError("exec", "--timeout must be a positive number of seconds");
    }
    request.timeoutMs = Math.max(1, Math.round(s * 1000));
  }
  try {
    const creds = await resolveCredentials(credentialInput(f));
    if (f.node !== undefined) {
      const node = String(f.node);
      // `local` and the host connected to name the node connected to: nothing to route.
      if (node !== "local" && node !== creds.host) request.node = node;
    }
    await using client = await ParleyClient.connect(creds);
    return await _runRemote(client, request, !f["no-stdin"]);
  } catch (e) {
    return _failure(e);
  }
}

/** `parley exec --list-nodes`. */
async function _listNodes(f: Parameters<typeof credentialInput>[0]): Promise<number> {
  try {
    const creds = await resolveCredentials(credentialInput(f));
    await using client = await ParleyClient.connect(creds);
    for (const line of formatExecNodes(await listExecNodes(client))) console.log(line);
    return EXIT.ok;
  } catch (e) {
    return _failure(e);
  }
}

/** Reports a failure around the command: 2 for credentials given wrong, else 255. */
function _failure(e: unknown): number {
  reportCliError(e);
  return e instanceof CredentialError ? EXIT.usage : EXEC_FAILURE;
}

async function _runRemote(
  client: ParleyClient,
  request: ExecRequest,
  forwardStdin: boolean,
): Promise<number> {
  let brokenPipe = false;
  const sink = (w: typeof Deno.stdout) => async (b: Uint8Array) => {
    if (brokenPipe) return;
    try {
      await _writeAll(w, b);
    } catch (e) {
      if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
      brokenPipe = true;
      remote.abort(); // nobody reads our output: stop the command, as SIGPIPE would
    }
  };
  const remote = RemoteExec.start(client, request, {
    stdout: sink(Deno.stdout),
    stderr: sink(Deno.stderr),
  });
  let interrupts = 0;
  const onSignal = (sig: "SIGINT" | "SIGTERM") => () => {
    if (sig === "SIGINT" && ++interrupts >= 3) {
      console.error("parley exec: interrupted three times; giving up on the remote command");
      Deno.exit(130); // closing the connection kills the command
    }
    remote.signal(sig).catch(() => {});
  };
  const handlers = [["SIGINT", onSignal("SIGINT")], ["SIGTERM", onSignal("SIGTERM")]] as const;
  for (const [sig, fn] of handlers) Deno.addSignalListener(sig, fn);
  try {
    if (forwardStdin) void _forwardStdin(remote);
    else remote.endInput();
    const result = await remote.done.catch((e) => {
      if (brokenPipe) return undefined;
      throw e;
    });
    if (!result) return EXIT_BROKEN_PIPE; // as if killed by SIGPIPE
    if (result.timedOut) {
      console.error(
        `parley exec: the command ran out of time after ${
          (result.durationMs / 1000).toFixed(1)
        } s and was killed`,
      );
    }
    return result.code;
  } finally {
    for (const [sig, fn] of handlers) Deno.removeSignalListener(sig, fn);
  }
}

/** Copies local stdin to the run until either ends. @neverRejects */
async function _forwardStdin(remote: RemoteExec): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    while (!remote.finished) {
      const n = await Deno.stdin.read(buf);
      if (n === null) break;
      await remote.write(buf.slice(0, n));
    }
  } catch {
    // stdin unreadable or the run ended: the command just sees end of input.
  }
  remote.endInput();
}
