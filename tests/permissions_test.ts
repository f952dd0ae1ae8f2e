/**
 * The least-privilege permission flags (scripts/permissions.json, baked into
 * the binary by `deno task compile`) are enough to run a server and a client,
 * and deny everything else.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { join } from "@std/path";
import {
  permissionFlags,
  type PermissionSpec,
  readPermissionSpec,
} from "../scripts/permission_flags.ts";
import { ROOT } from "./helpers.ts";

/** A scratch dir laid out like a user's machine: cwd with ./parley-data, and a config home. */
async function scratch() {
  const dir = await Deno.makeTempDir({ prefix: "parley-perm-" });
  const configHome = join(dir, "config-home");
  const configDir = join(configHome, "parley");
  await Deno.mkdir(configDir, { recursive: true });
  return { dir, configHome, configDir };
}

function flagsFor(spec: PermissionSpec, configDir: string, exec = false): string[] {
  return permissionFlags(spec, { data: "./parley-data", config: configDir, exec });
}

const decode = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("the permission flags grant nothing unscoped", async () => {
  const spec = await readPermissionSpec();
  const flags = flagsFor(spec, "/home/u/.config/parley");
  for (const f of flags) {
    assert(!["-A", "--allow-all"].includes(f), `${f} grants everything`);
    assert(
      !/^--allow-(read|write|env|run|sys|ffi|import)$/.test(f),
      `${f} is not scoped to names or paths`,
    );
    assert(!/^--allow-(run|sys|ffi)/.test(f), `${f} is not needed without exec`);
  }
  assert(flags.some((f) => f.startsWith("--allow-read=./parley-data,/home/u/.config/parley")));
  assert(flags.some((f) => f.startsWith("--allow-write=./parley-data,/home/u/.config/parley")));
  // Exec needs to start programs and signal their process groups.
  assertEquals(flagsFor(spec, "/c", true).filter((f) => f.startsWith("--allow-run")), [
    "--allow-run",
  ]);
});

Deno.test("a server and a client run with exactly the compile flags: login and round trips work", async () => {
  const spec = await readPermissionSpec();
  const { dir, configHome, configDir } = await scratch();
  const flags = flagsFor(spec, configDir);
  const server = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--config",
      join(ROOT, "deno.json"),
      ...flags,
      join(ROOT, "main.ts"),
      "serve",
      "--port",
      "0",
    ],
    cwd: dir,
    env: { NO_COLOR: "1", XDG_CONFIG_HOME: configHome },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = server.stderr.pipeTo(new WritableStream());
  try {
    // Read the first-start banner: the admin key, the port and the certificate.
    let text = "";
    const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
    while (!/certificate sha256:[0-9a-f]{64}/.test(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`server exited:\n${text}`);
      text += value;
    }
    const key = /keep it secret\): ([0-9a-f]{64})/.exec(text)?.[1];
    const port = /listening on parley:\/\/[^\s]+:(\d+)/.exec(text)?.[1];
    const pin = /certificate (sha256:[0-9a-f]{64})/.exec(text)?.[1];
    assert(key && port && pin, text);
    const drain = (async () => {
      while (!(await reader.read()).done);
    })();
    // The client finds its credentials in the config dir, which the flags allow reading.
    const cfg = join(configDir, "config.json");
    await Deno.writeTextFile(
      cfg,
      JSON.stringify({ server: `parley://admin@127.0.0.1:${port}`, key, pin }),
      { mode: 0o600 },
    );
    await Deno.chmod(cfg, 0o600);
    const ping = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--config",
        join(ROOT, "deno.json"),
        ...flags,
        join(ROOT, "main.ts"),
        "ping",
        "--count",
        "2",
      ],
      cwd: dir,
      env: { NO_COLOR: "1", XDG_CONFIG_HOME: configHome },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = decode(ping.stdout) + decode(ping.stderr);
    assertEquals(ping.code, 0, out);
    assertMatch(out, /authenticated as admin/);
    assertMatch(out, /round trip 2/);
    server.kill("SIGTERM");
    assertEquals((await server.status).code, 0);
    await drain;
  } finally {
    _killQuietly(server);
    await server.status;
    await stderr.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("with the compile flags a process cannot read, write, run or see env outside its scope", async () => {
  const spec = await readPermissionSpec();
  const { dir, configHome, configDir } = await scratch();
  try {
    await Deno.mkdir(join(dir, "parley-data"));
    const probe = join(dir, "probe.ts");
    await Deno.writeTextFile(
      probe,
      `const results: Record<string, string> = {};
const tryIt = async (name: string, fn: () => unknown) => {
  try { await fn(); results[name] = "allowed"; }
  catch (e) { results[name] = e instanceof Deno.errors.NotCapable ? "denied" : String(e); }
};
await tryIt("read /etc/hostname", () => Deno.readTextFile("/etc/hostname"));
await tryIt("read the repository", () => Deno.readTextFile(${
        JSON.stringify(join(ROOT, "deno.json"))
      }));
await tryIt("write outside", () => Deno.writeTextFile(${
        JSON.stringify(join(dir, "outside.txt"))
      }, "x"));
await tryIt("write data dir", () => Deno.writeTextFile("./parley-data/ok.txt", "x"));
await tryIt("write config dir", () => Deno.writeTextFile(${
        JSON.stringify(join(configDir, "ok.txt"))
      }, "x"));
await tryIt("env PATH", () => Deno.env.get("PATH"));
await tryIt("env PARLEY_KEY", () => Deno.env.get("PARLEY_KEY"));
await tryIt("run a program", () => new Deno.Command("true").output());
console.log(JSON.stringify(results));
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", ...flagsFor(spec, configDir), probe],
      cwd: dir,
      env: { XDG_CONFIG_HOME: configHome },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(out.code, 0, decode(out.stderr));
    assertEquals(JSON.parse(decode(out.stdout)), {
      "read /etc/hostname": "denied",
      "read the repository": "denied",
      "write outside": "denied",
      "write data dir": "allowed",
      "write config dir": "allowed",
      "env PATH": "denied",
      "env PARLEY_KEY": "allowed",
      "run a program": "denied",
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Kills a child that may already have exited (then `kill` throws a TypeError). */
function _killQuietly(child: Deno.ChildProcess): void {
  try {
    child.kill("SIGKILL");
  } catch (e) {
    if (!(e instanceof TypeError)) throw e;
  }
}
