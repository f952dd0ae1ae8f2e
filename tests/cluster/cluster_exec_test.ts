/**
 * Exec routed to a named node, end to end: a three-server NATS cluster and
 * Parley nodes as real processes — `a` and `b` run commands, `c` does not.
 * A client on `a` runs commands on `b`: output streams back before the
 * command ends, stdin goes through, the exit code comes back, 20 MiB arrive
 * whole through a paused reader without piling up on `a`, `b` writes the
 * audit line naming `a`; an absent node is `not_found`, a node without
 * exec `forbidden`; `exec.nodes` lists all three; and when `a` is killed
 * with SIGKILL mid-run, `b` kills the command's process group.
 *
 * @module
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { join } from "@std/path";
import { createHash } from "node:crypto";
import { ParleyClient } from "../../client/client.ts";
import { RemoteExec } from "../../client/exec/exec_remote.ts";
import { EXEC_REPL_COMMANDS } from "../../client/exec/exec_repl.ts";
import { Jobs } from "../../client/repl_jobs.ts";
import type { ReplContext } from "../../client/repl_command.ts";
import type { ExecNodesReply } from "../../protocol/ops/exec.ts";
import { keyBytes, ROOT, type SpawnedServer, spawnServer, transportFor } from "../helpers.ts";
import {
  collect,
  liveWith,
  sleepMarker,
  startExecServer,
  TEST_ALLOW,
  waitGoneWith,
} from "../exec/exec_fixtures.ts";
import { addClusterUser } from "./cluster_helpers.ts";
import { natsAvailable, startNatsCluster } from "./nats_fixture.ts";

const available = natsAvailable();
/** Without bubblewrap on this host the nodes run commands unsandboxed (same routing). */
const sandboxed = await Deno.stat("/usr/bin/bwrap").then(() => true, () => false);

/** A cluster node with its data dir and exec root (both removed on dispose). */
interface ExecNode extends AsyncDisposable {
  name: string;
  server: SpawnedServer;
  dataDir: string;
  root: string;
}

async function startExecNode(urls: string[], name: string, exec: boolean): Promise<ExecNode> {
  const dataDir = await Deno.makeTempDir({ prefix: `parley-xnode-${name}-` });
  const root = await Deno.makeTempDir({ prefix: `parley-xnode-${name}-root-` });
  await Deno.chmod(root, 0o711);
  await Deno.writeTextFile(
    join(dataDir, "config.json"),
    JSON.stringify({ exec: { root, allow: TEST_ALLOW } }),
  );
  const cleanup = async () => {
    await Deno.remove(dataDir, { recursive: true });
    await Deno.remove(root, { recursive: true });
  };
  try {
    const server = await spawnServer({
      dataDir,
      args: [
        "--cluster",
        urls.join(","),
        "--node",
        name,
        ...(exec ? ["--exec", ...(sandboxed ? [] : ["--exec-unsandboxed"])] : []),
      ],
      denoFlags: [
        `--allow-read=${root}`,
        `--allow-write=${root}`,
        sandboxed ? "--allow-run=/usr/bin/env,/usr/bin/bwrap,/usr/bin/kill" : "--allow-run",
      ],
    });
    return {
      name,
      server,
      dataDir,
      root,
      async [Symbol.asyncDispose]() {
        try {
          await server[Symbol.asyncDispose]();
        } finally {
          await cleanup();
        }
      },
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

function connect(node: ExecNode, user: string, key: string): Promise<ParleyClient> {
  return ParleyClient.connect({
    host: "127.0.0.1",
    port: node.server.port,
    user,
    key: keyBytes(key),
    ...transportFor(node.server.fingerprint),
  });
}

/** Polls `probe` every 100 ms until it returns a value, at most `ms`. */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 20_000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const v = await probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A REPL context that records what commands print; typed input ends at once. */
function replContext(client: ParleyClient): ReplContext & { lines: string[]; jobs: Jobs } {
  const lines: string[] = [];
  const jobs = new Jobs((l) => lines.push(l), () => {});
  return {
    jobs,
    startJob: (spec, input) => {
      const job = jobs.start(spec);
      input?.line(null);
      return job;
    },
    client,
    color: false,
    tty: false,
    lines,
    print: (l) => lines.push(l),
    currentRoom: () => "lobby",
    currentTarget: () => ({ room: "lobby" }),
    withInterrupt: (_on, fn) => fn(),
    withInput: (onLine, fn) => {
      onLine(null);
      return fn();
    },
    message: () => undefined,
  };
}

async function repl(client: ParleyClient, name: string, rest: string): Promise<string[]> {
  const ctx = replContext(client);
  const cmd = EXEC_REPL_COMMANDS.find((c) => c.name === name)!;
  await cmd.run(ctx, rest.split(" ").filter((w) => w), rest);
  await ctx.jobs.settle();
  return ctx.lines;
}

/** Resident set size of `pid` in KiB. */
async function rssKiB(pid: number): Promise<number> {
  const out = await new Deno.Command("ps", { args: ["-o", "rss=", "-p", String(pid)] }).output();
  return Number(new TextDecoder().decode(out.stdout).trim());
}

/** `parley exec ARGS` as a real process against `node`; `stdinFile` is its stdin. */
async function parleyExec(node: ExecNode, key: string, args: string[], stdinFile = "/dev/null") {
  const home = await Deno.makeTempDir({ prefix: "parley-home-" });
  try {
    const out = await new Deno.Command("sh", {
      args: [
        "-c",
        'exec "$0" "$@" < "$PARLEY_TEST_STDIN"',
        Deno.execPath(),
        "run",
        "--allow-net=127.0.0.1",
        "--allow-env",
        "--allow-read",
        join(ROOT, "main.ts"),
        "exec",
        ...args,
      ],
      env: {
        PARLEY_SERVER: node.server.url("ada"),
        ...node.server.clientEnv,
        PARLEY_KEY: key,
        PARLEY_TEST_STDIN: stdinFile,
        XDG_CONFIG_HOME: home,
        NO_COLOR: "1",
      },
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

Deno.test({
  name: "cluster exec: runs routed to another node stream, take stdin, end, and die with the front",
  ignore: !available,
}, async (t) => {
  await using nats = await startNatsCluster();
  await using a = await startExecNode(nats.urls, "a", true);
  await using b = await startExecNode(nats.urls, "b", true);
  await using _c = await startExecNode(nats.urls, "c", false);
  const key = await addClusterUser(nats.urls, "ada", { exec: true });
  const client = await connect(a, "ada", key);
  let frontKilled = false;
  try {
    await t.step("exec.nodes lists every node and whether it runs commands", async () => {
      const nodes = await waitFor("three nodes in exec.nodes", async () => {
        const r = await client.call("exec.nodes", {}) as ExecNodesReply;
        return r.nodes.length === 3 ? r.nodes : undefined;
      });
      assertEquals(nodes, [
        { name: "a", exec: true, self: true },
        { name: "b", exec: true, self: false },
        { name: "c", exec: false, self: false },
      ]);
    });

    await t.step(
      "output streams back before the command ends; stdin and exit code go through",
      async () => {
        const out: string[] = [];
        let firstLine!: () => void;
        const first = new Promise<void>((r) => (firstLine = r));
        const dec = new TextDecoder();
        const run = RemoteExec.start(client, {
          node: "b",
          // The command waits for input after its first line: that line must arrive first.
          argv: ["sh", "-c", "echo first; read x; echo got $x; echo oops >&2; exit 7"],
        }, {
          stdout: (chunk) => {
            out.push(dec.decode(chunk, { stream: true }));
            if (out.join("").includes("first\n")) firstLine();
          },
          stderr: (chunk) => out.push(`[err]${dec.decode(chunk)}`),
        });
        await first;
        assert(!run.finished);
        await run.write(new TextEncoder().encode("hello\n"));
        run.endInput();
        const result = await run.done;
        assertEquals(result.code, 7);
        assertEquals(result.signal, null);
        const all = out.join("");
        assertStringIncludes(all, "first\ngot hello\n");
        assertStringIncludes(all, "[err]oops\n");
      },
    );

    await t.step("the command runs on b, and b's audit log names the front node", async () => {
      const r = await collect(client, { node: "b", argv: ["sh", "-c", "echo on-b > where.txt"] });
      assertEquals(r.result.code, 0, r.stderr);
      assertEquals(await Deno.readTextFile(join(b.root, "ada", "where.txt")), "on-b\n");
      await assertRejects(() => Deno.stat(join(a.root, "ada", "where.txt")), Deno.errors.NotFound);
      // b writes its audit line once it has handed the outcome to a: allow it a moment.
      const bLogPath = join(b.dataDir, "exec-audit.log");
      let bLog = await Deno.readTextFile(bLogPath);
      for (let i = 0; i < 100 && !bLog.includes("where.txt"); i++) {
        await new Promise((r) => setTimeout(r, 50));
        bLog = await Deno.readTextFile(bLogPath);
      }
      assertStringIncludes(bLog, '"via":"a"');
      assertStringIncludes(bLog, "where.txt");
      const aLog = await Deno.readTextFile(join(a.dataDir, "exec-audit.log"));
      assertStringIncludes(aLog, '"node":"b"');
    });

    await t.step("an absent node is not_found, a node without exec forbidden", async () => {
      const gone = await assertRejects(
        () => collect(client, { node: "gone", argv: ["true"] }),
        Error,
        "not connected",
      );
      assertEquals((gone as { code?: string }).code, "not_found");
      const off = await assertRejects(
        () => collect(client, { node: "c", argv: ["true"] }),
        Error,
        "node c",
      );
      assertEquals((off as { code?: string }).code, "forbidden");
      // b's own allow-list applies: a command it does not allow is refused there.
      const notAllowed = await assertRejects(
        () => collect(client, { node: "b", argv: ["id"] }),
        Error,
        "allowlist",
      );
      assertEquals((notAllowed as { code?: string }).code, "forbidden");
    });

    await t.step(
      "`parley exec --node b` routes, forwards stdin and exits with the code",
      async () => {
        const input = join(a.dataDir, "input.txt");
        await Deno.writeTextFile(input, "one\ntwo\nthree\n");
        const r = await parleyExec(
          a,
          key,
          ["--node", "b", "--", "sh", "-c", "wc -l; exit 3"],
          input,
        );
        assertEquals(r.stdout.trim(), "3");
        assertEquals(r.code, 3, r.stderr);
        const gone = await parleyExec(a, key, ["--node", "gone", "--", "true"]);
        assertEquals(gone.code, 255);
        assertStringIncludes(gone.stderr, "not connected");
        const list = await parleyExec(a, key, ["--list-nodes"]);
        assertEquals(list.code, 0, list.stderr);
        assertEquals(list.stdout.split("\n").filter((l) => l).length, 3, list.stdout);
        assertStringIncludes(list.stdout, "(connected)");
      },
    );

    await t.step("the REPL: /exec @b runs on b, /nodes lists the nodes", async () => {
      const lines = await repl(client, "exec", "@b sh -c 'echo on $0; exit 4' b");
      assertEquals(lines, ["on b", "[exit 4]"]);
      const nodes = await repl(client, "nodes", "");
      assertEquals(nodes.length, 3, nodes.join("\n"));
      assertStringIncludes(nodes[0]!, "(connected)");
      assertStringIncludes(nodes.find((l) => l.startsWith("c "))!, "no exec");
      // the REPL prints a failed job's error ("[1] exec true failed: …")
      const gone = await repl(client, "exec", "@gone true").catch((e) => [String(e)]);
      assert(gone.some((l) => l.includes("not connected")), gone.join("\n"));
    });

    await t.step("20 MiB arrive whole and in order", async () => {
      const total = 20 * 1024 * 1024;
      const expected = createHash("sha256");
      const line = new TextEncoder().encode("0123456789abcdefghijklmnopqrstuvwxyz\n");
      for (let left = total; left > 0; left -= line.byteLength) {
        expected.update(line.subarray(0, Math.min(line.byteLength, left)));
      }
      const hash = createHash("sha256");
      let bytes = 0;
      const r = RemoteExec.start(client, {
        node: "b",
        argv: ["sh", "-c", `yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c ${total}`],
      }, {
        stdout: (chunk) => {
          hash.update(chunk);
          bytes += chunk.byteLength;
        },
        stderr: () => {},
      });
      r.endInput();
      const result = await r.done;
      assertEquals(result.code, 0);
      assertEquals(bytes, total);
      assertEquals(hash.digest("hex"), expected.digest("hex"));
    });

    await t.step(
      "a reader that stops reading holds the command back, not memory on a",
      async () => {
        const pid = a.server.process.pid;
        const baseline = await rssKiB(pid);
        let received = 0;
        let resume!: () => void;
        const paused = new Promise<void>((r) => (resume = r));
        // `yes` writes gigabytes per second: anything but credit would pile them up on a.
        const run = RemoteExec.start(client, { node: "b", argv: ["yes", "x".repeat(1000)] }, {
          stdout: async (chunk) => {
            received += chunk.byteLength;
            if (received > 1024 * 1024) await paused;
          },
          stderr: () => {},
        });
        run.endInput();
        let peak = baseline;
        for (let i = 0; i < 20; i++) {
          await new Promise((r) => setTimeout(r, 100));
          peak = Math.max(peak, await rssKiB(pid));
        }
        const whilePaused = received;
        resume();
        run.abort();
        await run.done.catch(() => {});
        assert(whilePaused > 0, "output flowed");
        assert(peak - baseline < 64 * 1024, `a grew by ${peak - baseline} KiB`);
        // The connection still works after the abort.
        assertEquals(typeof (await client.call("exec.nodes", {})), "object");
      },
    );

    await t.step("a signal reaches the command on b; its timeout is b's to enforce", async () => {
      const m = sleepMarker();
      let out = "";
      let trapped!: () => void;
      const ready = new Promise<void>((r) => (trapped = r));
      const run = RemoteExec.start(client, {
        node: "b",
        argv: ["sh", "-c", `trap 'echo caught; exit 3' TERM; echo ready; sleep ${m} & wait`],
      }, {
        stdout: (chunk) => {
          out += new TextDecoder().decode(chunk);
          if (out.includes("ready")) trapped();
        },
        stderr: () => {},
      });
      run.endInput();
      await ready;
      await run.signal("SIGTERM");
      const result = await run.done;
      assertEquals(out, "ready\ncaught\n");
      assertEquals(result.code, 3);
      assertEquals(await waitGoneWith(m), []);
      const slow = await collect(client, { node: "b", argv: ["sleep", "30"], timeoutMs: 300 });
      assertEquals(slow.result.timedOut, true);
    });

    await t.step("the running node killed with SIGKILL: the run fails with a reason", async () => {
      await using d = await startExecNode(nats.urls, "d", true);
      await waitFor("d in exec.nodes", async () => {
        const r = await client.call("exec.nodes", {}) as ExecNodesReply;
        return r.nodes.some((n) => n.name === "d") ? true : undefined;
      });
      let err = "";
      let started!: () => void;
      const running = new Promise<void>((r) => (started = r));
      const marker = sleepMarker();
      const run = RemoteExec.start(client, {
        node: "d",
        argv: ["sh", "-c", `echo started; sleep ${marker}`],
      }, {
        stdout: () => started(),
        stderr: (chunk) => {
          err += new TextDecoder().decode(chunk);
        },
      });
      try {
        await running;
        await d.server.stop("SIGKILL");
        const result = await run.done;
        assertEquals(result.code, 255);
        assertStringIncludes(err, "lost contact with node d");
      } finally {
        // Unsandboxed, nothing takes the orphaned command down with d: end it here.
        for (const pid of await liveWith(marker)) Deno.kill(pid, "SIGKILL");
      }
    });

    await t.step("a killed with SIGKILL mid-run: b kills the command's process group", async () => {
      const marker = sleepMarker();
      const dec = new TextDecoder();
      let seen = "";
      let started!: () => void;
      const running = new Promise<void>((r) => (started = r));
      const run = RemoteExec.start(client, {
        node: "b",
        argv: ["sh", "-c", `echo started; sleep ${marker} & sleep ${marker}; wait`],
      }, {
        stdout: (chunk) => {
          seen += dec.decode(chunk, { stream: true });
          if (seen.includes("started")) started();
        },
        stderr: () => {},
      });
      const done = run.done.catch((e: Error) => e);
      await running;
      await waitFor(
        "the command's processes on b",
        async () => (await liveWith(marker)).length >= 2 ? true : undefined,
      );
      frontKilled = true;
      await a.server.stop("SIGKILL");
      assert((await done) instanceof Error, "the run survived its front node");
      assertEquals(await waitGoneWith(marker, 15_000), [], "processes left after the front died");
    });
  } finally {
    if (!frontKilled) await client.close();
    else await client.close().catch(() => {});
  }
});

Deno.test("without a cluster: the one node is `local`, and another name is not_found", async () => {
  await using t = await startExecServer({ sandbox: sandboxed });
  const client = await t.connect("ada");
  assertEquals(await client.call("exec.nodes", {}), {
    nodes: [{ name: "local", exec: true, self: true }],
  });
  const r = await collect(client, { node: "local", argv: ["echo", "here"] });
  assertEquals(r.stdout, "here\n");
  const e = await assertRejects(() => collect(client, { node: "elsewhere", argv: ["true"] }));
  assertEquals((e as { code?: string }).code, "not_found");
});
