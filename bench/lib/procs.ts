/**
 * Process and port helpers for benchmarks: every process started here is
 * tracked and ended by {@linkcode ProcessGroup.close}.
 *
 * @module
 */

/** A port that was free a moment ago (bind to 0, read it, close). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Whether `cmd` is on PATH (or an existing absolute path). */
export async function have(cmd: string): Promise<boolean> {
  try {
    const out = await new Deno.Command("sh", {
      args: ["-c", `command -v ${cmd}`],
      stdout: "null",
      stderr: "null",
    })
      .output();
    return out.success;
  } catch {
    return false;
  }
}

/** Runs a command to completion; throws with its stderr on failure. */
export async function run(
  cmd: string,
  args: string[],
  options: Deno.CommandOptions = {},
): Promise<string> {
  const out = await new Deno.Command(cmd, { stdout: "piped", stderr: "piped", ...options, args })
    .output();
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

/** Resident set size of `pid` in KiB (via `ps`: Deno guards /proc behind --allow-all). */
export async function rssKiB(pid: number): Promise<number> {
  const out = await run("ps", ["-o", "rss=", "-p", String(pid)]);
  return Number(out.trim());
}

/** Waits until a TCP port accepts connections (bounded). */
export async function waitPort(port: number, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

/** Background processes that are all ended on close. */
export class ProcessGroup {
  #children = new Set<Deno.ChildProcess>();

  /** Starts a background process with output discarded unless asked for. */
  spawn(cmd: string, args: string[], options: Deno.CommandOptions = {}): Deno.ChildProcess {
    const child = new Deno.Command(cmd, {
      stdin: "null",
      stdout: "null",
      stderr: "null",
      ...options,
      args,
    }).spawn();
    this.#children.add(child);
    child.status.then(() => this.#children.delete(child));
    return child;
  }

  /** Ends every process still running (SIGTERM, then SIGKILL after 2 s). */
  async close(): Promise<void> {
    const all = [...this.#children];
    for (const c of all) {
      try {
        c.kill("SIGTERM");
      } catch {
        // already exited
      }
    }
    await Promise.race([
      Promise.all(all.map((c) => c.status)),
      new Promise((r) => setTimeout(r, 2000)),
    ]);
    for (const c of this.#children) {
      try {
        c.kill("SIGKILL");
      } catch {
        // already exited
      }
    }
    await Promise.all(all.map((c) => c.status));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Process ids of the direct children of `pid` (via `ps`). */
export async function childPids(pid: number): Promise<number[]> {
  const out = await run("ps", ["-o", "pid=", "--ppid", String(pid)]).catch(() => "");
  return out.split("\n").map((l) => Number(l.trim())).filter((n) => Number.isInteger(n) && n > 0);
}

/** CPU time (user + system, ms, to the kernel's 10 ms tick) of each of `pids` so far. */
export async function cpuMs(pids: number[]): Promise<number[]> {
  const out = await run("cat", pids.map((p) => `/proc/${p}/stat`));
  const byPid = new Map<number, number>();
  for (const line of out.trim().split("\n")) {
    const f = line.slice(line.lastIndexOf(")") + 2).split(" ");
    byPid.set(Number(line.split(" ", 1)[0]), (Number(f[11]) + Number(f[12])) * 10);
  }
  return pids.map((p) => byPid.get(p) ?? NaN);
}
