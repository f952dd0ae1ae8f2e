/**
 * Trust on first use and what the server stores: the known-servers file
 * records a server's fingerprint on first contact and refuses a changed
 * certificate; the account file holds verifiers that neither are keys nor
 * log anyone in; a data dir from before verifiers is migrated on start.
 *
 * @module
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { join } from "@std/path";
import { ParleyClient } from "../../client/client.ts";
import { ChangedServerError, UnknownServerError } from "../../client/known_servers.ts";
import { RemoteError } from "../../protocol/errors.ts";
import { Logger } from "../../server/log.ts";
import { keyBytes, ROOT, spawnServer, startTestServer } from "../helpers.ts";
import { startRelay } from "./relay.ts";

async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "parley-trust-" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

Deno.test("first contact records the fingerprint; a changed certificate is refused", async () => {
  await using a = await startTestServer({ plain: false });
  await using b = await startTestServer({ plain: false });
  assert(a.fingerprint !== b.fingerprint, "two data dirs, two certificates");
  const keyA = keyBytes(await a.addUser("ada"));
  await b.addUser("ada");
  await using dir = await tempDir();
  const knownServers = join(dir.path, "known_servers");
  await using relay = startRelay(a.port);
  const dial = (options: { acceptNew?: boolean } = {}) =>
    ParleyClient.connect({
      host: "127.0.0.1",
      port: relay.port,
      user: "ada",
      key: keyA,
      tls: true,
      knownServers,
      ...options,
    });
  // Without a terminal and without --accept-new, an unknown server is refused and not recorded.
  const unknown = await assertRejects(() => dial(), UnknownServerError);
  assertEquals(unknown.fingerprint, a.fingerprint);
  assertStringIncludes(unknown.message, "--accept-new");
  await assertRejects(() => Deno.stat(knownServers), Deno.errors.NotFound);
  // --accept-new records it (mode 0600), and it is trusted from then on.
  const first = await dial({ acceptNew: true });
  await first.close();
  assertEquals(
    await Deno.readTextFile(knownServers),
    `127.0.0.1:${relay.port} ${a.fingerprint}\n`,
  );
  assertEquals((await Deno.stat(knownServers)).mode! & 0o777, 0o600);
  const again = await dial();
  assertEquals(await again.call("diag.echo", { again: true }), { again: true });
  await again.close();
  // The same host:port now presents another certificate: refused, even with --accept-new.
  relay.retarget(b.port);
  const changed = await assertRejects(() => dial({ acceptNew: true }), ChangedServerError);
  assertEquals(changed.fingerprint, b.fingerprint);
  assertStringIncludes(changed.message, "has changed");
  assertStringIncludes(changed.message, `parley known-servers forget 127.0.0.1:${relay.port}`);
  assertStringIncludes(await Deno.readTextFile(knownServers), a.fingerprint!);
});

/** Runs `parley ARGS` with its config dir in `home`, no terminal. */
async function parley(home: string, env: Record<string, string>, ...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      join(ROOT, "main.ts"),
      ...args,
    ],
    env: { XDG_CONFIG_HOME: home, NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, out: dec.decode(out.stdout), err: dec.decode(out.stderr) };
}

Deno.test("the CLI refuses an unknown server without a terminal, records it with --accept-new, and forgets it", async () => {
  await using s = await spawnServer();
  assert(s.fingerprint?.startsWith("sha256:"), s.output.join("\n"));
  const key = await s.addUser("ada");
  await using home = await tempDir();
  const env = { PARLEY_KEY: key, PARLEY_SERVER: `parley://ada@127.0.0.1:${s.port}` };
  const refused = await parley(home.path, env, "ping", "--count", "1");
  assertEquals(refused.code, 10, refused.err); // authentication: the server is not trusted
  assertStringIncludes(refused.err, s.fingerprint!);
  assertStringIncludes(refused.err, "--accept-new");
  const ok = await parley(home.path, env, "ping", "--count", "1", "--accept-new");
  assertEquals(ok.code, 0, ok.err);
  assertMatch(ok.out + ok.err, /authenticated as ada/);
  const again = await parley(home.path, env, "ping", "--count", "1");
  assertEquals(again.code, 0, again.err);
  const list = await parley(home.path, {}, "known-servers");
  assertStringIncludes(list.out, `127.0.0.1:${s.port} ${s.fingerprint}`);
  const forget = await parley(home.path, {}, "known-servers", "forget", `127.0.0.1:${s.port}`);
  assertEquals(forget.code, 0, forget.err);
  assertEquals((await parley(home.path, env, "ping", "--count", "1")).code, 10);
  // Plaintext must be asked for on both sides: a TLS server refuses a --plain client.
  const plain = await parley(home.path, env, "ping", "--count", "1", "--plain");
  assert(plain.code !== 0, plain.out);
  // `parley user add` tells the operator the fingerprint to hand on with the key.
  const added = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      `--allow-read=${s.dataDir}`,
      `--allow-write=${s.dataDir}`,
      join(ROOT, "main.ts"),
      "user",
      "add",
      "bob",
      "--data",
      s.dataDir,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertStringIncludes(new TextDecoder().decode(added.stdout), s.fingerprint!);
});

Deno.test("the account file holds verifiers: no key in it, and its contents do not log in", async () => {
  await using t = await startTestServer();
  const key = await t.addUser("ada");
  const text = await Deno.readTextFile(join(t.dataDir, "users.json"));
  assertEquals(text.includes(key), false, "the key is stored");
  const [stored] = (JSON.parse(text) as { users: Record<string, string>[] }).users;
  assertEquals(Object.keys(stored!).includes("key"), false);
  for (const field of ["storedKey", "serverKey"]) {
    const e = await assertRejects(() =>
      ParleyClient.connect({
        host: "127.0.0.1",
        port: t.port,
        user: "ada",
        key: keyBytes(stored![field]!),
        ...t.clientOptions,
      })
    );
    assert(e instanceof RemoteError, String(e));
    assertEquals(e.code, "auth_failed", field);
  }
  const ok = await t.connect("ada");
  assertEquals(await ok.call("diag.echo", { ok: 1 }), { ok: 1 });
});

Deno.test("a data dir from before verifiers is migrated on start, with one notice, and its keys still log in", async () => {
  await using dir = await tempDir();
  const key = "ab".repeat(32);
  const legacy = { name: "ada", key, admin: true, exec: false, created: new Date().toISOString() };
  await Deno.writeTextFile(join(dir.path, "users.json"), JSON.stringify({ users: [legacy] }), {
    mode: 0o600,
  });
  const lines: string[] = [];
  await using t = await startTestServer({ dataDir: dir.path }, {
    log: new Logger({ level: "info", sink: (l) => lines.push(l) }),
  });
  const notices = lines.filter((l) => l.includes("verifiers"));
  assertEquals(notices.length, 1, lines.join("\n"));
  const text = await Deno.readTextFile(join(dir.path, "users.json"));
  assertEquals(text.includes(key), false, "the old key is still stored");
  const c = await ParleyClient.connect({
    host: "127.0.0.1",
    port: t.port,
    user: "ada",
    key: keyBytes(key),
    ...t.clientOptions,
  });
  assertEquals(await c.call("diag.echo", { migrated: true }), { migrated: true });
  await c.close();
});

Deno.test("on a terminal the first connection shows the fingerprint and asks; yes records it", async () => {
  await using t = await startTestServer({ plain: false });
  const key = await t.addUser("ada");
  await using home = await tempDir();
  const parley = [
    Deno.execPath(),
    "run",
    "--allow-net=127.0.0.1",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    join(ROOT, "main.ts"),
    "ping",
    "--count",
    "1",
    `parley://ada@127.0.0.1:${t.port}`,
  ];
  const quoted = parley.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
  const ask = async (answer: string) => {
    const child = new Deno.Command("script", {
      args: ["-qfec", `exec ${quoted}`, "/dev/null"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { PARLEY_KEY: key, XDG_CONFIG_HOME: home.path, NO_COLOR: "1", TERM: "xterm" },
    }).spawn();
    const dec = new TextDecoder();
    let text = "";
    const reader = (async () => {
      for await (const chunk of child.stdout) text += dec.decode(chunk, { stream: true });
    })();
    const writer = child.stdin.getWriter();
    // Answer once the question is on the terminal (bounded: 20 s).
    for (let i = 0; i < 400 && !text.includes("[y/N]"); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await writer.write(new TextEncoder().encode(answer));
    await writer.close();
    const status = await child.status;
    await reader;
    await child.stderr.cancel();
    return { code: status.code, text };
  };
  const no = await ask("n\n");
  assertStringIncludes(no.text, t.fingerprint!);
  assertStringIncludes(no.text, "Trust this server");
  assert(no.code !== 0, no.text);
  await assertRejects(() => Deno.stat(join(home.path, "parley", "known_servers")));
  const yes = await ask("y\n");
  assertEquals(yes.code, 0, yes.text);
  assertMatch(yes.text, /authenticated as ada/);
  assertStringIncludes(
    await Deno.readTextFile(join(home.path, "parley", "known_servers")),
    `127.0.0.1:${t.port} ${t.fingerprint}`,
  );
});
