/**
 * Exec confinement (issue 10 §1): what a user with the exec right — even in
 * shell mode — can reach from inside the bubblewrap sandbox. Real servers,
 * real sandboxes, host-side checks with `ps` and `stat`.
 */
import { assert, assertEquals, assertNotEquals, assertRejects } from "@std/assert";
import { join } from "@std/path";
import { RemoteError } from "../../protocol/errors.ts";
import { RemoteExec } from "../../client/exec/exec_remote.ts";
import { spawnServer } from "../helpers.ts";
import {
  collect,
  liveWith,
  sleepMarker,
  startExecServer,
  TEST_ALLOW,
  waitGoneWith,
} from "./exec_fixtures.ts";

/** Deno permissions of a scoped `serve --exec` whose exec root is `root`. */
function scopedExecFlags(root: string): string[] {
  return [
    `--allow-read=${root}`,
    `--allow-write=${root}`,
    "--allow-run=/usr/bin/env,/usr/bin/bwrap,/usr/bin/kill",
  ];
}

/** A real `parley serve --exec` process with its exec root and data dir in temp dirs. */
async function spawnExecServer(
  exec: Record<string, unknown>,
  options: { env?: Record<string, string>; args?: string[]; launcher?: string[] } = {},
) {
  const dataDir = await Deno.makeTempDir({ prefix: "parley-sbx-" });
  const root = await Deno.makeTempDir({ prefix: "parley-sbx-root-" });
  await Deno.chmod(root, 0o711);
  await Deno.writeTextFile(
    join(dataDir, "config.json"),
    JSON.stringify({ exec: { root, ...exec } }),
  );
  const cleanup = async () => {
    await Deno.remove(dataDir, { recursive: true });
    await Deno.remove(root, { recursive: true });
  };
  try {
    const server = await spawnServer({
      dataDir,
      args: ["--exec", ...(options.args ?? [])],
      denoFlags: scopedExecFlags(root),
      env: options.env ?? {},
      ...(options.launcher ? { launcher: options.launcher } : {}),
    });
    return {
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

const SECRET = "s3cr3t-" + crypto.randomUUID();

Deno.test("the server's environment is never visible to a command", async () => {
  await using s = await spawnExecServer({ shell: true }, { env: { PARLEY_TEST_SECRET: SECRET } });
  await using c = await s.server.connect("ada", { exec: true });
  const pid = s.server.process.pid;
  const r = await collect(c, {
    shell: `cat /proc/${pid}/environ; cat /proc/1/environ; cat /proc/*/environ; ` +
      `cat /proc/${pid}/cmdline; ls /proc/${pid}; echo end`,
  });
  assertEquals(r.stdout.endsWith("end\n"), true, r.stdout);
  assert(!r.stdout.includes(SECRET) && !r.stderr.includes(SECRET), "the secret leaked");
  assert(!r.stdout.includes(s.dataDir), "the server's command line leaked");
  // The command's own environment is exactly the configured one (bwrap adds PWD). The wrappers
  // around it, bwrap's init (PID 1) among them, run with LC_ALL=C besides.
  const env = await collect(c, { shell: "tr '\\0' '\\n' < /proc/$$/environ | sort" });
  assertEquals(env.stdout, "LANG=C.UTF-8\nPATH=/usr/bin:/bin\nPWD=/work\n");
  const init = await collect(c, { shell: "tr '\\0' '\\n' < /proc/1/environ | sort" });
  assertEquals(init.stdout, "LANG=C.UTF-8\nLC_ALL=C\nPATH=/usr/bin:/bin\n");
  // No descriptor reaches the command but stdin/out/err: neither the server's own (socket,
  // files) nor one the server inherited from whatever started it (here the test runner's).
  const fds = await collect(c, { shell: "exec ls /proc/self/fd" });
  assertEquals(fds.stdout.trim().split("\n").filter((fd) => Number(fd) > 3), []);
});

Deno.test("descriptors the server inherited never reach a command; without any, runs skip the sweep", async (t) => {
  const SWEEP_LOG = "inherited open descriptors";
  const cases = [
    // The shell leaves descriptor 7 open across exec, as a careless supervisor would.
    {
      name: "server started with descriptor 7 open",
      script: 'exec 7</dev/null; exec "$@"',
      inherited: true,
    },
    {
      name: "server started with none",
      inherited: false,
      script: 'for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done; ' +
        'exec "$@"',
    },
  ];
  for (const { name, script, inherited } of cases) {
    await t.step(name, async () => {
      await using s = await spawnExecServer({ shell: true }, {
        args: ["--log-level", "info"],
        launcher: ["/bin/bash", "-c", script, "bash"],
      });
      await using c = await s.server.connect("ada", { exec: true });
      // ls's own descriptor for the listing is 3.
      const fds = await collect(c, { shell: "exec ls /proc/self/fd" });
      assertEquals(fds.stdout.trim().split("\n").map(Number), [0, 1, 2, 3]);
      const r = await collect(c, { shell: "trap 'echo trapped' INT; kill -INT $$; echo end" });
      assertEquals(r.stdout, "trapped\nend\n", "the command's signals are not back to default");
      // The start-up probe saw descriptor 7 (and whatever the test runner itself inherited).
      const said = s.server.output.find((l) => l.includes(SWEEP_LOG));
      assertEquals(said !== undefined, inherited, s.server.output.join("\n"));
      if (said) assert(/descriptors[=:" ]+"?([\d,]*,)?7[,"\s]/.test(said + " "), said);
    });
  }
});

Deno.test("the data dir, keys and file homes are not visible inside the sandbox", async () => {
  await using t = await startExecServer({ shell: true });
  const c = await t.connect("ada");
  await collect(c, { argv: ["true"] });
  const users = join(t.dataDir, "users.json");
  assert((await Deno.stat(users)).isFile);
  const r = await collect(c, {
    shell: `cat ../users.json; cat ../../users.json; cat ${users}; ls ${t.dataDir}; ` +
      `ls ${join(t.dataDir, "files", "home", "ada")}; ` +
      `test -e ${t.dataDir} && echo VISIBLE; ` +
      `find / -path /proc -prune -o -name users.json -print 2>/dev/null; echo end`,
  });
  assertEquals(r.stdout, "end\n");
  assert(r.stderr.includes("No such file or directory"), r.stderr);
  const top = await collect(c, { argv: ["ls", "-A", "/"] });
  assertEquals(
    top.stdout.trim().split("\n").filter((n) => !["lib32", "libx32"].includes(n)).sort(),
    ["bin", "dev", "etc", "lib", "lib64", "proc", "sbin", "tmp", "usr", "work"].sort(),
  );
  const etc = await collect(c, { argv: ["ls", "-A", "/etc"] });
  assert(!etc.stdout.includes("shadow"), etc.stdout);
});

Deno.test("another user's exec directory and runs are out of reach", async () => {
  await using t = await startExecServer({ shell: true });
  await t.addUser("bob", { exec: true });
  const bob = await t.connect("bob");
  const ada = await t.connect("ada");
  await collect(bob, { shell: "echo bob-private > mine.txt" });
  const bobFile = join(t.execRoot, "bob", "mine.txt");
  assertEquals(await Deno.readTextFile(bobFile), "bob-private\n");
  const m = sleepMarker();
  let started!: () => void;
  const up = new Promise<void>((r) => (started = r));
  const bobRun = RemoteExec.start(bob, { shell: `echo up; exec sleep ${m}` }, {
    stdout: () => started(),
    stderr: () => {},
  });
  bobRun.endInput();
  const bobDone = bobRun.done.catch(() => {});
  await up;
  const [hostPid] = await liveWith(`sleep ${m}`);
  assert(hostPid !== undefined);
  const r = await collect(ada, {
    shell: `cat ${bobFile}; ls ${t.execRoot}; ls -a /work/..; ` +
      `for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done; ` +
      `tr '\\0' ' ' < /proc/${hostPid}/cmdline; echo; ls /proc | grep -c '^[0-9]'`,
  });
  assert(!r.stdout.includes("bob-private"), r.stdout);
  const lines = r.stdout.split("\n");
  assert(!lines.some((l) => l.startsWith(`sleep ${m}`)), "bob's run is visible to ada");
  assert(!lines.includes("bob"), r.stdout);
  assert(r.stderr.includes("No such file or directory"), r.stderr);
  // ada's own sandbox holds only a handful of processes (bwrap's init, sh, and the pipeline).
  const count = Number(r.stdout.trim().split("\n").at(-1));
  assert(count > 0 && count < 10, r.stdout);
  const err = await assertRejects(
    () => collect(ada, { argv: ["ls"], cwd: "../bob" }),
    RemoteError,
  );
  assertEquals(err.code, "forbidden");
  bobRun.abort();
  await bobDone;
  assertEquals(await waitGoneWith(m), []);
});

Deno.test("links made inside the sandbox never reach the file commands", async () => {
  await using t = await startExecServer({ shell: true });
  await t.addUser("bob", { exec: true });
  const ada = await t.connect("ada");
  const homes = join(t.dataDir, "files", "home");
  await Deno.mkdir(join(homes, "ada"), { recursive: true });
  await Deno.mkdir(join(homes, "bob"), { recursive: true });
  await Deno.writeTextFile(join(homes, "ada", "x.txt"), "ada's file\n");
  const secret = join(homes, "bob", "secret.txt");
  await Deno.writeTextFile(secret, "bob's secret\n");
  const r = await collect(ada, {
    shell: [
      `ln ${secret} /work/hard`,
      `ln ${secret} ${homes}/ada/hard`,
      `ln -s ${secret} ${homes}/ada/evil`,
      `ln -s ${secret} /work/evil`,
      `ln -s ${t.dataDir} /work/data`,
      `mkdir -p ${homes}/ada/dir`,
      `cat /work/evil /work/data/users.json`,
      "echo end",
    ].join("; "),
  });
  assertEquals(r.stdout, "end\n");
  assert(!r.stderr.includes("secret\n"), r.stderr);
  // Nothing appeared in ada's home, and bob's file got no second name.
  const names: string[] = [];
  for await (const e of Deno.readDir(join(homes, "ada"))) names.push(e.name);
  assertEquals(names, ["x.txt"]);
  assertEquals((await Deno.stat(secret)).nlink, 1);
  for (const path of ["evil", "hard", "dir"]) {
    const err = await assertRejects(() => ada.call("file.stat", { path }), RemoteError);
    assertEquals(err.code, "not_found", path);
  }
  // The symlinks exist only in ada's exec directory, which no file command serves.
  assert((await Deno.lstat(join(t.execRoot, "ada", "evil"))).isSymlink);
  const err = await assertRejects(() => ada.call("file.stat", { path: "../evil" }), RemoteError);
  assertNotEquals(err.code, undefined);
});

Deno.test("date cannot set the clock inside the sandbox", async () => {
  await using t = await startExecServer();
  const c = await t.connect("ada");
  // Setting the clock to the current second: harmless even where it would succeed.
  const now = Math.floor(Date.now() / 1000);
  const r = await collect(c, { argv: ["date", "-s", `@${now}`] });
  assertNotEquals(r.result.code, 0, r.stdout);
  assert(r.stderr.includes("Operation not permitted"), r.stderr);
});

Deno.test("no process outlives its run: setsid, double fork and background jobs", async () => {
  await using t = await startExecServer({ shell: true });
  const c = await t.connect("ada");
  const m = sleepMarker();
  const r = await collect(c, {
    shell: `setsid sh -c 'sleep ${m} & sleep ${m}' </dev/null >/dev/null 2>&1 & ` +
      `(sleep ${m} </dev/null >/dev/null 2>&1 &); ` +
      `nohup sleep ${m} </dev/null >/dev/null 2>&1 & ` +
      `sleep 0.2; ps -e -o args= | grep -c '^sleep ${m}'`,
  });
  assertEquals(r.result.code, 0, r.stderr);
  assert(Number(r.stdout.trim()) >= 3, `the daemons were started: ${r.stdout}`);
  assertEquals(await waitGoneWith(m), []);

  // The same when the run is killed at its timeout.
  const m2 = sleepMarker();
  const timedOut = await collect(c, {
    shell: `setsid sh -c 'sleep ${m2}' </dev/null >/dev/null 2>&1 & sleep ${m2}`,
    timeoutMs: 1000,
  });
  assertEquals(timedOut.result.timedOut, true);
  assertEquals(await waitGoneWith(m2), []);

  // And when the client sends SIGKILL, or goes away.
  for (const end of ["SIGKILL", "disconnect"] as const) {
    const client = end === "disconnect" ? await t.connect("ada") : c;
    const m3 = sleepMarker();
    let up!: () => void;
    const started = new Promise<void>((r) => (up = r));
    const run = RemoteExec.start(client, {
      shell: `setsid sh -c 'sleep ${m3}' </dev/null >/dev/null 2>&1 & ` +
        `(sleep ${m3} </dev/null >/dev/null 2>&1 &); echo up; sleep ${m3}`,
    }, { stdout: () => up(), stderr: () => {} });
    run.endInput();
    const done = run.done.catch((e) => e);
    await started;
    assert((await liveWith(`sleep ${m3}`)).length >= 3, end);
    if (end === "SIGKILL") await run.signal("SIGKILL");
    else await client.close();
    await done;
    assertEquals(await waitGoneWith(m3), [], end);
  }
});

Deno.test("the network is off unless exec.network is set", async () => {
  const line = (port: number) =>
    `bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port} && echo connected || echo refused'`;
  {
    await using t = await startExecServer({ shell: true });
    const c = await t.connect("ada");
    const r = await collect(c, { shell: line(t.port) });
    assertEquals(r.stdout, "refused\n", r.stderr);
    const ip = await collect(c, { shell: "cat /proc/net/dev | grep -c ':'" });
    assertEquals(ip.stdout.trim(), "1"); // only the loopback, which is down
  }
  {
    await using t = await startExecServer({ shell: true, network: true });
    const c = await t.connect("ada");
    assertEquals((await collect(c, { shell: line(t.port) })).stdout, "connected\n");
  }
});

Deno.test("per-run caps: processes, memory and CPU time", async () => {
  await using t = await startExecServer({
    shell: true,
    maxProcesses: 8,
    maxMemoryBytes: 64 * 1024 * 1024,
    maxCpuSeconds: 1,
  });
  const c = await t.connect("ada");
  const m = sleepMarker();
  const forks = await collect(c, {
    shell: `n=0; for i in $(seq 30); do sleep ${m} & n=$((n+1)); done 2>/dev/null; ` +
      `ps -e -o args= | grep -c '^sleep ${m}'`,
  });
  assert(Number(forks.stdout.trim()) < 8, forks.stdout);
  assertEquals(await waitGoneWith(m), []);
  const mem = await collect(c, {
    shell: `awk 'BEGIN { s = sprintf("%200000000s", ""); print length(s) }'`,
  });
  assertNotEquals(mem.stdout, "200000000\n");
  assertNotEquals(mem.result.code, 0);
  const cpu = await collect(c, { shell: "while :; do :; done", timeoutMs: 60_000 });
  assertEquals(cpu.result.timedOut, false);
  assertEquals(cpu.result.signal, "SIGXCPU");
});

Deno.test("a program in the user's own directory runs by its path inside the sandbox", async () => {
  await using t = await startExecServer({ shell: true });
  const c = await t.connect("ada");
  await collect(c, { shell: "printf '#!/bin/sh\\necho mine\\n' > tool; chmod +x tool" });
  assertEquals((await collect(c, { argv: ["/work/tool"] })).stdout, "mine\n");
  const err = await assertRejects(() => collect(c, { argv: ["/work/none"] }), RemoteError);
  assertEquals(err.code, "not_found");
});

Deno.test("commands run as an unprivileged user when the server is root", async () => {
  await using t = await startExecServer({ shell: true });
  const c = await t.connect("ada");
  const caps = await collect(c, {
    shell: "grep CapEff /proc/self/status; unshare -U true || echo no-nested-userns",
  });
  assertEquals(caps.stdout, "CapEff:\t0000000000000000\nno-nested-userns\n", caps.stderr);
  const r = await collect(c, { shell: "id -u; id -G; echo x > made.txt" });
  const [uid, groups] = r.stdout.trim().split("\n");
  const made = await Deno.stat(join(t.execRoot, "ada", "made.txt"));
  if (Deno.uid() === 0) {
    assertEquals(uid, "65534");
    assertEquals(groups, "65534");
    assertEquals(made.uid, 65534);
  } else {
    assertEquals(uid, String(Deno.uid()));
    assertEquals(made.uid, Deno.uid());
  }
  assertNotEquals(uid, "0");
});

Deno.test("resetting the exec.stderr stream kills the run", async () => {
  await using t = await startExecServer({ allow: TEST_ALLOW });
  const c = await t.connect("ada");
  const m = sleepMarker();
  const token = "stderrreset01";
  const err = c.open("exec.stderr", { token }, { fin: true });
  const run = c.open("exec.run", { token, argv: ["sh", "-c", `echo up; sleep ${m}`] });
  run.stream.end();
  const first = await run.stream.read();
  assertEquals(new TextDecoder().decode(first!), "up\n");
  const result = run.result.then((r) => r, (e) => e);
  err.stream.reset("cancel", "not interested in stderr");
  await err.result.catch(() => {});
  assertEquals(await waitGoneWith(m), []);
  await result;
  const audit = await Deno.readTextFile(join(t.dataDir, "exec-audit.log"));
  assertEquals(JSON.parse(audit.trim().split("\n").at(-1)!).killed, "client");
});

Deno.test("serve --exec refuses to start without a sandbox unless --exec-unsandboxed", async () => {
  const missing = { bwrapPath: "/nonexistent/bwrap" };
  const e = await assertRejects(() => spawnExecServer(missing), Error);
  assert(e.message.includes("apt-get install bubblewrap"), e.message);
  assert(e.message.includes("--exec-unsandboxed"), e.message);
  await using s = await spawnExecServer(missing, { args: ["--exec-unsandboxed"] });
  assert(s.server.output.some((l) => l.includes("WITHOUT a sandbox")), s.server.output.join("\n"));
});

Deno.test("--exec-unsandboxed still runs commands, capped and (as root) unprivileged", async () => {
  await using t = await startExecServer({ sandbox: false, shell: true });
  const c = await t.connect("ada");
  const r = await collect(c, {
    shell: "id -u; pwd; grep 'Max processes' /proc/self/limits | tr -s ' ' | cut -d' ' -f3; " +
      "echo $$; cut -d' ' -f5,6 /proc/$$/stat",
  });
  const [uid, pwd, nproc, pid, groupAndSession] = r.stdout.trim().split("\n");
  // The command leads its own session and process group, which the server signals as a whole.
  assertEquals(groupAndSession, `${pid} ${pid}`);
  assertEquals(pwd, await Deno.realPath(join(t.execRoot, "ada")));
  assertEquals(nproc, "64");
  assertEquals(uid, Deno.uid() === 0 ? "65534" : String(Deno.uid()));
});

Deno.test("serve --exec refuses an exec root inside the data dir (symlinks included) or shared", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "parley-sbx-" });
  const link = `${dataDir}-link`;
  try {
    await Deno.symlink(dataDir, link);
    for (const root of ["exec-root", join(link, "exec")]) {
      await Deno.writeTextFile(join(dataDir, "config.json"), JSON.stringify({ exec: { root } }));
      const e = await assertRejects(
        () =>
          spawnServer({
            dataDir,
            args: ["--exec"],
            denoFlags: [`--allow-read=${link}`, `--allow-write=${link}`, "--allow-run"],
          }),
        Error,
      );
      assert(e.message.includes("inside the data dir"), e.message);
    }
    const left: string[] = [];
    for await (const entry of Deno.readDir(dataDir)) left.push(entry.name);
    // The exec root was refused before anything was created for it.
    assertEquals(left.filter((n) => n.startsWith("exec")), []);
    // A shared directory (here one like /tmp) is not an exec root either.
    const shared = await Deno.makeTempDir({ prefix: "parley-sbx-shared-" });
    try {
      await Deno.chmod(shared, 0o1777);
      await Deno.writeTextFile(
        join(dataDir, "config.json"),
        JSON.stringify({ exec: { root: shared } }),
      );
      const e = await assertRejects(
        () =>
          spawnServer({
            dataDir,
            args: ["--exec"],
            denoFlags: [`--allow-read=${shared}`, `--allow-write=${shared}`, "--allow-run"],
          }),
        Error,
      );
      assert(e.message.includes("readable or writable by others"), e.message);
      assertEquals((await Deno.stat(shared)).mode! & 0o7777, 0o1777);
    } finally {
      await Deno.remove(shared, { recursive: true });
    }
  } finally {
    await Deno.remove(link);
    await Deno.remove(dataDir, { recursive: true });
  }
});
