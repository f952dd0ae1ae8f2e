/**
 * The embedded accounts backend (`server/embedded/accounts.ts`): the
 * {@linkcode Accounts} contract on real temp dirs, and what only the
 * embedded store promises: the file's mode, persistence across reopening,
 * and changes by another process (`parley user`) reaching a running store.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import type { AccountChange, Accounts } from "../../server/backend/accounts.ts";
import { openEmbeddedAccounts } from "../../server/embedded/accounts.ts";
import type { UserStore } from "../../server/embedded/user_store.ts";
import { Logger } from "../../server/log.ts";
import { parleyUser, runParleyUser } from "../helpers.ts";
import { runAccountsContract } from "./accounts_contract.ts";

const _DEADLINE_MS = 10_000;

/** The data dir of each store the factory opened (peers open the same one). */
const _dirs = new WeakMap<Accounts, string>();

function _open(dataDir: string): Promise<UserStore> {
  return openEmbeddedAccounts({ dataDir }, new Logger({ level: "error" }));
}

runAccountsContract("embedded", async (_t, peerOf) => {
  const dir = peerOf ? _dirs.get(peerOf) : await Deno.makeTempDir({ prefix: "parley-accounts-" });
  if (dir === undefined) throw new Error("peerOf was not opened by this factory");
  const store = await _open(dir);
  const accounts: Accounts & AsyncDisposable = {
    get: (n) => store.get(n),
    peek: (n) => store.peek(n),
    list: () => store.list(),
    add: (n, r) => store.add(n, r),
    setRights: (n, r) => store.setRights(n, r),
    rotate: (n) => store.rotate(n),
    remove: (n) => store.remove(n),
    verifierFor: (n) => store.verifierFor(n),
    subscribe: (l) => store.subscribe(l),
    async [Symbol.asyncDispose]() {
      await store.close();
      if (!peerOf) await Deno.remove(dir, { recursive: true });
    },
  };
  _dirs.set(accounts, dir);
  return accounts;
});

/** A temp dir removed on dispose. */
async function _tempDir(): Promise<AsyncDisposable & { path: string }> {
  const path = await Deno.makeTempDir({ prefix: "parley-accounts-" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

Deno.test("the embedded account file is private to its owner and survives reopening", async () => {
  await using dir = await _tempDir();
  let keyId: string | undefined;
  {
    await using store = await _open(dir.path);
    await store.add("ada", { admin: true });
    keyId = store.peek("ada")?.keyId;
  }
  const st = await Deno.stat(join(dir.path, "users.json"));
  assertEquals((st.mode ?? 0) & 0o777, 0o600);
  await using again = await _open(dir.path);
  assertEquals(again.peek("ada")?.keyId, keyId, "opening did not load the accounts");
  assertEquals((await again.get("ada"))?.admin, true);
});

Deno.test("changes by `parley user` in another process reach a running store", async () => {
  await using dir = await _tempDir();
  await using store = await _open(dir.path);
  await store.add("bob");
  const seen: AccountChange[] = [];
  const stop = store.subscribe((c) => seen.push(c));
  try {
    const wait = async (ok: () => boolean, what: string) => {
      for (let i = 0; i < _DEADLINE_MS / 20 && !ok(); i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert(ok(), `${what} was not seen: ${JSON.stringify(seen)}`);
    };
    const added = JSON.parse(await parleyUser(dir.path, "add", "ada", "--exec", "--json")) as {
      key: string;
    };
    await wait(() => store.peek("ada")?.exec === true, "parley user add");
    assertEquals((await store.verifierFor("ada"))?.verifier.storedKey.byteLength, 32);
    assertEquals(added.key.length, 64);
    const listed = JSON.parse(await parleyUser(dir.path, "list", "--json")) as unknown[];
    assertEquals(listed.length, 2);
    await parleyUser(dir.path, "set", "bob", "--admin");
    await wait(() => store.peek("bob")?.admin === true, "parley user set");
    await parleyUser(dir.path, "remove", "bob");
    await wait(() => store.peek("bob") === undefined, "parley user remove");
    assertEquals(
      seen.map((c) => [c.name, c.account === undefined ? "removed" : "changed"]),
      [["ada", "changed"], ["bob", "changed"], ["bob", "removed"]],
    );
  } finally {
    stop();
  }
});

Deno.test("parley user refuses bad names (exit code 2) and missing accounts (4)", async () => {
  await using dir = await _tempDir();
  const cases: [string[], number][] = [
    [["add", "Bad Name"], 2],
    [["remove", "nobody"], 4],
    [["rotate", "nobody"], 4],
    [["set", "nobody", "--exec"], 4],
  ];
  for (const [args, code] of cases) {
    const out = await runParleyUser(dir.path, ...args);
    assertEquals(out.code, code, `parley user ${args.join(" ")}: ${out.stderr}`);
    assert(out.stderr.startsWith("parley user: "));
  }
  await using store = await _open(dir.path);
  assertEquals(await store.list(), []);
});
