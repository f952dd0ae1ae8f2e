import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { join } from "@std/path";
import { ParleyClient } from "../../client/client.ts";
import { RemoteExec } from "../../client/exec/exec_remote.ts";
import { keyBytes, ROOT, type SpawnedServer, spawnServer } from "../helpers.ts";
import { sleepMarker, TEST_ALLOW, waitGoneWith } from "./exec_fixtures.ts";

/**
 * Scoped run permission for the server: `env` and `bwrap` start the sandbox,
 * `kill` signals process groups. Commands inside the sandbox need none.
 */
const SERVER_RUN_FLAG = "--allow-run=/usr/bin/env,/usr/bin/bwrap,/usr/bin/kill";

async function startServer() {
  const dataDir = await Deno.makeTempDir({ prefix: "parley-exec-" });
  const root = `${dataDir}-exec`; // the default exec root
  await Deno.writeTextFile(
    join(dataDir, "config.json"),
    JSON.stringify({ exec: { allow: TEST_ALLOW } }),
  );
  try {
    const server = await spawnServer({
      dataDir,
      args: ["--exec"],
      denoFlags: [SERVER_RUN_FLAG, `--allow-read=${root}`, `--allow-write=${root}`],
    });
    const key = await server.addUser("ada", { exec: true });
    return {
      server,
      key,
      dataDir,
      root,
      async [Symbol.asyncDispose]() {
        await server[Symbol.asyncDispose]();
        await Deno.remove(dataDir, { recursive: true });
        await Deno.remove(root, { recursive: true });
      },
    };
  } catch (e) {
    await Deno.remove(dataDir, { recursive: true });
    await Deno.remove(root, { recursive: true }).catch(() => {});
    throw e;
  }
}

/** Deno's arguments for running `parley exec ARGS` with the client's permissions. */
function _execArgs(args: string[]): string[] {
  return [
    "run",
    "--allow-net=127.0.0.1",
    "--allow-env",
    "--allow-read",
    join(ROOT, "main.ts"),
    "exec",
    ...args,
  ];
}

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `parley exec ARGS` as a real process; `stdinFile` becomes its stdin via the shell. */
async function parleyExec(
  server: SpawnedServer,
  key: string,
  args: string[],
  stdinFile = "/dev/null",
): Promise<CliResult> {
  const home = await Deno.makeTempDir({ prefix: "parley-home-" });
  try {
    const out = await new Deno.Command("sh", {
      args: [
        "-c",
        'exec "$0" "$@" < "$PARLEY_TEST_STDIN"',
        Deno.execPath(),
        ..._execArgs(args),
      ],
      env: {
        PARLEY_SERVER: server.url("ada"),
        ...server.clientEnv,
        PARLEY_KEY: key,
        PARLEY_TEST_STDIN: stdinFile,
        XDG_CONFIG_HOME: home, // no client config file from the real home
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

/** Resident set size of `pid` in KiB. */
async function rssKiB(pid: number): Promise<number> {
  const out = await new Deno.Command("ps", { args: ["-o", "rss=", "-p", String(pid)] }).output();
  return Number(new TextDecoder().decode(out.stdout).trim());
}

Deno.test("parley exec as a real process, against a server with scoped --allow-run", async (t) => {
  await using s = await startServer();

  await t.step("`parley exec -- wc -c < file` counts the file sent as stdin", async () => {
    const file = join(s.dataDir, "input.bin");
    await Deno.writeFile(file, new Uint8Array(1_234_567).fill(97));
    const r = await parleyExec(s.server, s.key, ["--", "wc", "-c"], file);
    assertEquals(r.stdout.trim(), "1234567");
    assertEquals(r.code, 0, r.stderr);
  });

  await t.step("stdout and stderr are separated and the exit code is the command's", async () => {
    const r = await parleyExec(s.server, s.key, [
      "--",
      "sh",
      "-c",
      "echo out; echo err >&2; exit 42",
    ]);
    assertEquals(r.stdout, "out\n");
    assertEquals(r.stderr, "err\n");
    assertEquals(r.code, 42);
  });

  await t.step("a command killed by a signal exits with 128+n", async () => {
    const r = await parleyExec(s.server, s.key, ["--", "sh", "-c", "kill -KILL $$"]);
    assertEquals(r.code, 137);
  });

  await t.step("a refused command exits 255 with the reason", async () => {
    const r = await parleyExec(s.server, s.key, ["--", "rm", "-rf", "x"]);
    assertEquals(r.code, 255);
    assertStringIncludes(r.stderr, "allowlist");
  });

  await t.step("a --cwd that escapes the exec root is refused", async () => {
    assertEquals((await parleyExec(s.server, s.key, ["--", "true"])).code, 0);
    await Deno.symlink("/etc", join(s.root, "ada", "etc"));
    for (const cwd of ["..", "etc"]) {
      const r = await parleyExec(s.server, s.key, ["--cwd", cwd, "--", "pwd"]);
      assertEquals(r.code, 255);
      assertStringIncludes(r.stderr, "outside the exec root");
    }
  });

  await t.step("--node naming another node is refused by the server (exit 255)", async () => {
    const r = await parleyExec(s.server, s.key, ["--node", "elsewhere", "--", "true"]);
    assertEquals(r.code, 255);
    assertStringIncludes(r.stderr, `node "elsewhere" is not connected`);
    assertEquals((await parleyExec(s.server, s.key, ["--node", "local", "--", "true"])).code, 0);
  });

  await t.step("closing parley exec's stdout stops an endless command (exit 141)", async () => {
    const child = new Deno.Command(Deno.execPath(), {
      args: _execArgs(["--", "yes"]),
      env: { PARLEY_SERVER: s.server.url("ada"), ...s.server.clientEnv, PARLEY_KEY: s.key },
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = child.stdout.getReader();
    const first = await reader.read();
    assertEquals(new TextDecoder().decode(first.value).slice(0, 2), "y\n");
    await reader.cancel();
    assertEquals((await child.status).code, 141);
  });

  await t.step("--timeout kills the command and its children (via the kill program)", async () => {
    const m = sleepMarker();
    const r = await parleyExec(s.server, s.key, [
      "--timeout",
      "0.5",
      "--",
      "sh",
      "-c",
      `echo $$; sleep ${m} & sleep ${m}`,
    ]);
    assertEquals(r.code, 137);
    assertStringIncludes(r.stderr, "ran out of time");
    assertEquals(await waitGoneWith(m), []);
  });
});

Deno.test("output that outruns a slow client is back-pressured, not buffered", async () => {
  await using s = await startServer();
  await using client = await ParleyClient.connect({
    host: "127.0.0.1",
    port: s.server.port,
    user: "ada",
    key: keyBytes(s.key),
    ...s.server.clientOptions,
  });
  const pid = s.server.process.pid;
  const baseline = await rssKiB(pid);
  let received = 0;
  let peak = baseline;
  const run = RemoteExec.start(client, { argv: ["yes", "x".repeat(1000)] }, {
    stdout: async (b) => {
      received += b.byteLength;
      await new Promise((r) => setTimeout(r, 5)); // a slow reader
    },
    stderr: () => {},
  });
  run.endInput();
  for (let i = 0; i < 15; i++) {
    await new Promise((r) => setTimeout(r, 100));
    peak = Math.max(peak, await rssKiB(pid));
  }
  run.abort();
  await run.done.catch(() => {});
  assert(received > 0, "output flowed");
  // `yes` writes gigabytes per second; unbounded buffering would pass this easily.
  assert(peak - baseline < 96 * 1024, `server RSS grew by ${peak - baseline} KiB`);
  // The connection still works and the aborted command is gone.
  assertEquals(typeof (await client.call("diag.echo", {})), "object");
});
