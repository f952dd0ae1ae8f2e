/**
 * `deno task install` gives a newcomer a `parley` command: it writes the
 * launcher into ~/.local/bin (HOME is a temp dir here), says how to put that
 * dir on PATH, and then `parley --help`, the tour's `parley user add` and
 * `parley serve`, and the connect hint the server prints work as printed.
 *
 * @module
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { stripAnsiCode } from "@std/fmt/colors";
import { join } from "@std/path";
import { ROOT } from "../helpers.ts";

const decode = (b: Uint8Array) => new TextDecoder().decode(b);

/** The module cache of this process, kept although HOME changes. */
function denoDir(): string {
  return Deno.env.get("DENO_DIR") ??
    join(
      Deno.env.get("XDG_CACHE_HOME") ?? join(Deno.env.get("HOME") ?? "/root", ".cache"),
      "deno",
    );
}

/** A fresh machine: an empty HOME, a PATH without the bin dir. */
async function freshHome() {
  const dir = await Deno.makeTempDir({ prefix: "parley-install-" });
  const home = join(dir, "home");
  const work = join(dir, "work");
  await Deno.mkdir(home);
  await Deno.mkdir(work);
  const env = {
    HOME: home,
    PATH: "/usr/bin:/bin",
    DENO_DIR: denoDir(),
    NO_COLOR: "1",
    TERM: "xterm",
  };
  return {
    dir,
    home,
    work,
    env,
    bin: join(home, ".local", "bin"),
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

/** Runs `program args` to its end. */
async function run(
  program: string,
  args: string[],
  options: { env: Record<string, string>; cwd: string },
) {
  const out = await new Deno.Command(program, {
    args,
    cwd: options.cwd,
    env: options.env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

/** `deno task -q install ARGS` in the checkout, as the README says. */
function install(env: Record<string, string>, ...args: string[]) {
  return run(Deno.execPath(), ["task", "-q", "install", ...args], { env, cwd: ROOT });
}

Deno.test("deno task install: the parley command, the PATH hint, and the tour's commands as printed", async () => {
  await using m = await freshHome();
  const inst = await install(m.env);
  assertEquals(inst.code, 0, inst.stdout + inst.stderr);
  assertEquals(inst.stderr, "", "no task banner or download noise");
  assertStringIncludes(inst.stdout, `Installed ${join(m.bin, "parley")}`);
  assertStringIncludes(inst.stdout, `${m.bin} is not on your PATH`);
  const exportLine = inst.stdout.split("\n").find((l) => l.trim().startsWith("export PATH="));
  if (!exportLine) throw new Error(`no export line in:\n${inst.stdout}`);
  assertEquals(exportLine.trim(), `export PATH=${m.bin}:"$PATH"`);

  // The printed line, pasted into a shell, makes `parley` a command.
  const help = await run("/bin/sh", ["-c", `${exportLine.trim()}\nparley --help`], {
    env: m.env,
    cwd: m.work,
  });
  assertEquals(help.code, 0, help.stdout + help.stderr);
  assertMatch(help.stdout, /^parley: a self-hosted terminal chat/);
  assertEquals(help.stderr, "");

  // The tour, in one directory: start the server (./parley-data), add ada, paste the hint.
  const env = { ...m.env, PATH: `${m.bin}:${m.env.PATH}` };
  const server = new Deno.Command("/bin/sh", {
    args: ["-c", "exec parley serve --port 0"],
    cwd: m.work,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const serverErr = new Response(server.stderr).text();
  const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let banner = "";
    while (!/certificate sha256:/.test(banner)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`server exited:\n${banner}\n${await serverErr}`);
      banner += value;
    }
    const hint = banner.split("\n").find((l) => /parley connect/.test(l))?.trim();
    if (!hint) throw new Error(`no connect hint in:\n${banner}`);
    assertMatch(hint, /^PARLEY_KEY=[0-9a-f]{64} parley connect parley:\/\/admin@127\.0\.0\.1:\d+$/);
    const fingerprint = /certificate (sha256:[0-9a-f]{64})/.exec(banner)?.[1];
    assert(fingerprint, banner);

    const add = await run("/bin/sh", ["-c", "parley user add ada"], { env, cwd: m.work });
    assertEquals(add.code, 0, add.stdout + add.stderr);
    assertMatch(
      add.stdout,
      /^Created user ada\. Key \(shown once, keep it secret\):\n[0-9a-f]{64}\n/,
    );
    assertStringIncludes(add.stdout, fingerprint);

    // The hint as printed, in a terminal: trust the server on first use, chat, quit.
    const repl = inTerminal(hint, env, m.work);
    try {
      await repl.waitFor("Trust this server and remember it? [y/N]");
      assertStringIncludes(repl.text(), fingerprint);
      await repl.write("y\r");
      await repl.waitFor("Connected to 127.0.0.1:");
      await repl.write("/quit\r");
      assertEquals((await repl.close()).code, 0, repl.text());
    } finally {
      await repl.close();
    }
  } finally {
    server.kill("SIGTERM");
    while (!(await reader.read()).done);
    assertEquals((await server.status).code, 0, await serverErr);
  }
});

Deno.test("deno task install: reinstalls over its own launcher, refuses another parley, --bin-dir", async () => {
  await using m = await freshHome();
  const bin = join(m.dir, "my bin");
  const env = { ...m.env, PATH: `${bin}:${m.env.PATH}` };
  const first = await install(env, "--bin-dir", bin);
  assertEquals(first.code, 0, first.stdout + first.stderr);
  assert(!first.stdout.includes("not on your PATH"), first.stdout);
  const again = await install(env, "--bin-dir", bin);
  assertEquals(again.code, 0, again.stdout + again.stderr);
  const help = await run("/bin/sh", ["-c", "parley --version"], { env, cwd: m.work });
  assertEquals(help.stdout, "parley 0.1.0 (protocol 1)\n", help.stderr);

  // Someone else's `parley` is kept unless --force.
  await Deno.mkdir(m.bin, { recursive: true });
  await Deno.writeTextFile(join(m.bin, "parley"), "#!/bin/sh\necho other\n");
  const refused = await install(m.env);
  assertEquals(refused.code, 1, refused.stdout + refused.stderr);
  assertStringIncludes(refused.stderr, "was not written by this script");
  assertStringIncludes(refused.stderr, "--force");
  assertEquals(await Deno.readTextFile(join(m.bin, "parley")), "#!/bin/sh\necho other\n");
  const forced = await install(m.env, "--force");
  assertEquals(forced.code, 0, forced.stdout + forced.stderr);

  // The Deno it points at is gone and there is no npx: it says what to do.
  const launcher = join(bin, "parley");
  const text = await Deno.readTextFile(launcher);
  await Deno.writeTextFile(launcher, text.replace(/^deno=.*$/m, "deno=/nonexistent/deno"));
  const gone = await run(launcher, ["--help"], {
    env: { ...env, PATH: "/nonexistent" },
    cwd: m.work,
  });
  assertEquals(gone.code, 127, gone.stdout + gone.stderr);
  assertStringIncludes(gone.stderr, "parley: /nonexistent/deno is gone and npx is not on PATH");
  assertStringIncludes(gone.stderr, "task install");

  const bad = await install(m.env, "--bin");
  assertEquals(bad.code, 2);
  assertStringIncludes(bad.stderr, "unknown option --bin");
});

/** A command line run by `sh` in a pseudo-terminal (`script`), with keys to type. */
function inTerminal(line: string, env: Record<string, string>, cwd: string) {
  const child = new Deno.Command("script", {
    args: ["-qfec", `stty cols 120 rows 40; ${line}`, "/dev/null"],
    cwd,
    env: { ...env, XDG_CONFIG_HOME: join(env.HOME ?? cwd, ".config"), SHELL: "/bin/sh" },
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const pump = (async () => {
    const dec = new TextDecoder();
    for await (const chunk of child.stdout) text += dec.decode(chunk, { stream: true });
  })();
  const err = new Response(child.stderr).text();
  const writer = child.stdin.getWriter();
  let closed: Promise<Deno.CommandStatus> | undefined;
  return {
    text: () => stripAnsiCode(text),
    write: (keys: string) => writer.write(new TextEncoder().encode(keys)),
    async waitFor(what: string) {
      // Bounded: 300 polls of 50 ms.
      for (let i = 0; i < 300 && !stripAnsiCode(text).includes(what); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      if (!stripAnsiCode(text).includes(what)) {
        throw new Error(`no ${JSON.stringify(what)} in ${JSON.stringify(stripAnsiCode(text))}`);
      }
    },
    close() {
      closed ??= (async () => {
        await writer.close().catch(() => {});
        const timer = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch { /* already gone */ }
        }, 15_000);
        const status = await child.status;
        clearTimeout(timer);
        await pump;
        await err;
        return status;
      })();
      return closed;
    },
  };
}
