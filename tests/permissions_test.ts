/**
 * The permission flags of scripts/permissions.json, which `deno task compile`
 * bakes into the binary and `deno task install` into the `parley` launcher,
 * are the ones the deno.json run tasks use, and are enough for what a user
 * does: serve a data dir anywhere, put any readable file, get into any
 * writable dir, run remote exec (only with the exec flags); environment
 * variables and programs outside the list stay denied.
 *
 * @module
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertNotMatch,
  assertStringIncludes,
} from "@std/assert";
import { dirname, join } from "@std/path";
import { permissionFlags, readPermissionSpec, runTasks } from "../scripts/permission_flags.ts";
import { ROOT } from "./helpers.ts";

const decode = (b: Uint8Array) => new TextDecoder().decode(b);

/** `deno run` with exactly `flags`, as the compiled binary or the launcher runs. */
function parleyArgs(flags: string[], ...args: string[]): string[] {
  return [
    "run",
    "--no-prompt",
    "--config",
    join(ROOT, "deno.json"),
    ...flags,
    join(ROOT, "main.ts"),
    ...args,
  ];
}

/** Removes temp dirs, ignoring ones already gone. */
async function removeAll(...dirs: string[]): Promise<void> {
  for (const d of dirs) await Deno.remove(d, { recursive: true }).catch(() => {});
}

/** A `parley serve` with exactly `flags`, after its start-up banner. */
interface Served extends AsyncDisposable {
  key: string;
  port: number;
  pin: string;
  banner: string;
  /** Stops it (SIGTERM); asserts it exited 0 and returns what it wrote to stderr. */
  stop(): Promise<string>;
}

async function serve(flags: string[], cwd: string, ...args: string[]): Promise<Served> {
  const child = new Deno.Command(Deno.execPath(), {
    args: parleyArgs(flags, "serve", "--port", "0", ...args),
    cwd,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let stopped: Promise<{ status: Deno.CommandStatus; stderr: string }> | undefined;
  const stop = () => stopped ??= _stop();
  const _stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch (e) {
      if (!(e instanceof TypeError)) throw e; // already exited
    }
    while (!(await reader.read()).done);
    const status = await child.status;
    return { status, stderr: await stderr };
  };
  try {
    while (!/certificate sha256:[0-9a-f]{64}/.test(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`server exited:\n${text}\n${await stderr}`);
      text += value;
    }
  } catch (e) {
    await stop();
    throw e;
  }
  const stopChecked = async () => {
    const { status, stderr } = await stop();
    assertEquals(status.code, 0, stderr);
    return stderr;
  };
  const key = /keep it secret\): ([0-9a-f]{64})/.exec(text)?.[1];
  const port = /listening on parley:\/\/[^\s]+:(\d+)/.exec(text)?.[1];
  const pin = /certificate (sha256:[0-9a-f]{64})/.exec(text)?.[1];
  if (!key || !port || !pin) {
    await stop();
    throw new Error(`no key, port or certificate in the banner:\n${text}`);
  }
  return {
    key,
    port: Number(port),
    pin,
    banner: text,
    stop: stopChecked,
    async [Symbol.asyncDispose]() {
      await stopChecked();
    },
  };
}

/** Runs a client command with exactly `flags` as admin of `server`. */
async function client(flags: string[], server: Served, cwd: string, ...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: parleyArgs(flags, ...args),
    cwd,
    env: {
      NO_COLOR: "1",
      XDG_CONFIG_HOME: join(cwd, ".config"),
      PARLEY_SERVER: `parley://admin@127.0.0.1:${server.port}`,
      PARLEY_KEY: server.key,
      PARLEY_PIN: server.pin,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

Deno.test("the permission flags: any file, scoped env, net, run only with exec", async () => {
  const spec = await readPermissionSpec();
  const flags = permissionFlags(spec);
  assertEquals(flags.slice(0, 3), ["--allow-net", "--allow-read", "--allow-write"]);
  assertEquals(
    flags[3],
    "--allow-env=PARLEY_USER,PARLEY_KEY,PARLEY_SERVER,PARLEY_CONFIG,PARLEY_PIN,HOME," +
      "XDG_CONFIG_HOME,NO_COLOR,TERM",
  );
  assertEquals(flags.length, 4, flags.join(" "));
  for (const f of permissionFlags(spec, { exec: true })) {
    assert(!["-A", "--allow-all"].includes(f), `${f} grants everything`);
    assert(!/^--allow-(env|run|sys|ffi|import)$/.test(f), `${f} is not scoped`);
    assert(!/^--allow-(sys|ffi|import)/.test(f), `${f} is not needed`);
  }
  assertEquals(
    permissionFlags(spec, { exec: true }),
    [...flags, "--allow-run=/usr/bin/env,/usr/bin/bwrap,/usr/bin/kill"],
  );
});

Deno.test("deno.json's serve, serve-exec, connect and parley tasks use the permission flags", async () => {
  const tasks = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))).tasks;
  for (const [name, want] of Object.entries(runTasks(await readPermissionSpec()))) {
    assertEquals(
      tasks[name],
      want,
      `deno.json task ${name} differs from scripts/permissions.json; print the tasks with ` +
        "`deno run --allow-read=scripts scripts/permission_flags.ts --tasks`",
    );
  }
});

Deno.test("with the compile flags: serve --data elsewhere, put a file from outside cwd, get into another dir", async () => {
  const flags = permissionFlags(await readPermissionSpec());
  const cwd = await Deno.makeTempDir({ prefix: "parley-perm-cwd-" });
  const data = await Deno.makeTempDir({ prefix: "parley-perm-data-" });
  const src = await Deno.makeTempDir({ prefix: "parley-perm-src-" });
  const dest = await Deno.makeTempDir({ prefix: "parley-perm-dest-" });
  try {
    {
      await using server = await serve(flags, cwd, "--data", data);
      assertStringIncludes(server.banner, `(data in ${data})`);
      const notes = join(src, "notes.txt");
      await Deno.writeTextFile(notes, "notes from /tmp\n");
      const put = await client(flags, server, cwd, "put", notes);
      assertEquals(put.code, 0, put.stdout + put.stderr);
      const got = join(dest, "copy.txt");
      const get = await client(flags, server, cwd, "get", "notes.txt", got);
      assertEquals(get.code, 0, get.stdout + get.stderr);
      assertEquals(await Deno.readTextFile(got), "notes from /tmp\n");
      // A directory as LOCAL: the file keeps its name inside it.
      const intoDir = await client(flags, server, cwd, "get", "notes.txt", dest + "/");
      assertEquals(intoDir.code, 0, intoDir.stdout + intoDir.stderr);
      assertEquals(await Deno.readTextFile(join(dest, "notes.txt")), "notes from /tmp\n");
    }
    // Nothing landed in the directory the commands ran in but the client config.
    const left = [];
    for await (const e of Deno.readDir(cwd)) left.push(e.name);
    assertEquals(left.filter((n) => n !== ".config"), []);
  } finally {
    await removeAll(cwd, data, src, dest);
  }
});

Deno.test("remote exec works with the exec build's flags and is refused without them", async () => {
  const spec = await readPermissionSpec();
  const cwd = await Deno.makeTempDir({ prefix: "parley-perm-cwd-" });
  const data = await Deno.makeTempDir({ prefix: "parley-perm-data-" });
  try {
    {
      await using server = await serve(
        permissionFlags(spec, { exec: true }),
        cwd,
        "--data",
        data,
        "--exec",
      );
      const flags = permissionFlags(spec);
      const run = await client(flags, server, cwd, "exec", "-n", "--", "echo", "hi from exec");
      assertEquals(run.code, 0, run.stdout + run.stderr);
      assertEquals(run.stdout, "hi from exec\n");
      // sleep 30 ends at once on a signal: the group is reached through /usr/bin/kill.
      const timed = await client(
        flags,
        server,
        cwd,
        "exec",
        "-n",
        "--timeout",
        "1",
        "--",
        "sleep",
        "30",
      );
      assert(timed.code !== 0, timed.stdout + timed.stderr);
      assertMatch(timed.stderr, /ran out of time/);
      // Process groups are signalled through /usr/bin/kill, so the server has no warning.
      const log = await server.stop();
      assertMatch(log, /exec enabled .*sandbox=true/);
      assertNotMatch(log, /cannot signal process groups|warn/);
    }
    // Without the run permission --exec refuses to start, naming what to grant.
    const out = await new Deno.Command(Deno.execPath(), {
      args: parleyArgs(permissionFlags(spec), "serve", "--port", "0", "--data", data, "--exec"),
      cwd,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert(out.code !== 0, decode(out.stdout));
    assertMatch(decode(out.stderr), /--allow-run/);
  } finally {
    await removeAll(cwd, data, `${data}-exec`);
  }
});

Deno.test("with the compile flags a process reads and writes files but cannot run programs or see other env", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "parley-perm-probe-" });
  try {
    const probe = join(cwd, "probe.ts");
    const elsewhere = join(dirname(cwd), `${cwd.split("/").pop()}-written`);
    await Deno.writeTextFile(
      probe,
      `const results: Record<string, string> = {};
const tryIt = async (name: string, fn: () => unknown) => {
  try { await fn(); results[name] = "allowed"; }
  catch (e) { results[name] = e instanceof Deno.errors.NotCapable ? "denied" : String(e); }
};
await tryIt("read /etc/hostname", () => Deno.readTextFile("/etc/hostname"));
await tryIt("write elsewhere", () => Deno.writeTextFile(${JSON.stringify(elsewhere)}, "x"));
await tryIt("env PATH", () => Deno.env.get("PATH"));
await tryIt("env PARLEY_KEY", () => Deno.env.get("PARLEY_KEY"));
await tryIt("run a program", () => new Deno.Command("true").output());
await tryIt("run /usr/bin/env", () => new Deno.Command("/usr/bin/env").output());
await tryIt("sys", () => Deno.hostname());
console.log(JSON.stringify(results));
`,
    );
    const spec = await readPermissionSpec();
    const run = async (exec: boolean) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--no-prompt", "--no-config", ...permissionFlags(spec, { exec }), probe],
        cwd,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assertEquals(out.code, 0, decode(out.stderr));
      await Deno.remove(elsewhere);
      return JSON.parse(decode(out.stdout));
    };
    const base = {
      "read /etc/hostname": "allowed",
      "write elsewhere": "allowed",
      "env PATH": "denied",
      "env PARLEY_KEY": "allowed",
      "run a program": "denied",
      "run /usr/bin/env": "denied",
      "sys": "denied",
    };
    assertEquals(await run(false), base);
    assertEquals(await run(true), { ...base, "run /usr/bin/env": "allowed" });
  } finally {
    await removeAll(cwd);
  }
});

/** Runs scripts/compile.sh with `deno` on PATH (as `deno task compile` has it) and only `env`. */
async function compileScript(env: Record<string, string>, ...args: string[]) {
  const out = await new Deno.Command("bash", {
    args: [join(ROOT, "scripts", "compile.sh"), ...args],
    clearEnv: true,
    env: {
      PATH: `${dirname(Deno.execPath())}:/usr/bin:/bin`,
      HOME: Deno.env.get("HOME") ?? "/root",
      DENO_DIR: denoDir(),
      NO_COLOR: "1",
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

/** The module cache of this process. */
function denoDir(): string {
  return Deno.env.get("DENO_DIR") ??
    join(
      Deno.env.get("XDG_CACHE_HOME") ?? join(Deno.env.get("HOME") ?? "/root", ".cache"),
      "deno",
    );
}

/** Whether `deno compile` has its runtime at hand without downloading it. */
async function denortCached(): Promise<boolean> {
  const zip = join(
    denoDir(),
    "dl",
    "release",
    `v${Deno.version.deno}`,
    `denort-${Deno.build.target}.zip`,
  );
  try {
    await Deno.stat(zip);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

Deno.test("compile.sh bakes in the same flags, and fails plainly when it cannot build", async () => {
  const spec = await readPermissionSpec();
  const plain = await compileScript({}, "--print-flags");
  assertEquals(plain.code, 0, plain.stderr);
  assertEquals(plain.stdout.trim().split("\n"), permissionFlags(spec));
  const exec = await compileScript({}, "--exec", "--print-flags");
  assertEquals(exec.stdout.trim().split("\n"), permissionFlags(spec, { exec: true }));
  const dir = await Deno.makeTempDir({ prefix: "parley-compile-" });
  const out = join(dir, "parley");
  const absent = async () => {
    await Deno.stat(out).then(
      () => Promise.reject(new Error(`${out} was written`)),
      (e) => e instanceof Deno.errors.NotFound ? undefined : Promise.reject(e),
    );
  };
  try {
    const badDenort = await compileScript({ DENORT_BIN: "/nonexistent/denort" }, "-o", out);
    assertEquals(badDenort.code, 1, badDenort.stdout + badDenort.stderr);
    assertStringIncludes(
      badDenort.stderr,
      "DENORT_BIN=/nonexistent/denort is not an executable file",
    );
    await absent();
    // No denort in the cache and its download refused (a proxy on a closed loopback port):
    // exit 1 and say how to build offline, not "skipped" with exit 0.
    const noNet = { HTTPS_PROXY: "http://127.0.0.1:9", https_proxy: "http://127.0.0.1:9" };
    const offline = await compileScript(noNet, "-o", out);
    if (await denortCached()) {
      assertEquals(offline.code, 0, offline.stdout + offline.stderr);
      const version = await new Deno.Command(out, { args: ["--version"], stdout: "piped" })
        .output();
      assertEquals(decode(version.stdout), "parley 0.1.0 (protocol 1)\n");
    } else {
      assertEquals(offline.code, 1, offline.stdout + offline.stderr);
      assertStringIncludes(offline.stderr, "compile: deno compile failed");
      assertStringIncludes(offline.stderr, "DENORT_BIN=/path/to/denort");
      await absent();
    }
    const bad = await compileScript({}, "--allow-path", "/x");
    assertEquals(bad.code, 2);
    assertStringIncludes(bad.stderr, "unknown option --allow-path");
  } finally {
    await removeAll(dir);
  }
  // CI does not build the binary (it may have no denort and no internet access).
  assert(!/compile/.test(await Deno.readTextFile(join(ROOT, ".ci", "run"))));
});
