/**
 * The {@linkcode Accounts} contract (`server/backend/accounts.ts`), run
 * against any implementation: each `*_test.ts` beside this file calls
 * {@linkcode runAccountsContract} with a factory for its implementation.
 *
 * @module
 */
import { assert, assertEquals, assertMatch, assertNotEquals, assertRejects } from "@std/assert";
import { decodeHex } from "@std/encoding/hex";
import { verifierOf } from "../../protocol/auth.ts";
import type { Account, AccountChange, Accounts } from "../../server/backend/accounts.ts";
import { RequestError } from "../../server/errors.ts";

/**
 * Opens an empty store, or, with `peerOf`, another instance on the same
 * store as `peerOf` (another process's or node's view of it). Disposing
 * the instance closes it; disposing the first one also deletes the store.
 */
export type AccountsFactory = (
  t: Deno.TestContext,
  peerOf?: Accounts,
) => Promise<Accounts & AsyncDisposable>;

/**
 * How long a change made elsewhere may take to reach `peek` and the
 * subscribers before a test fails: the contract promises 2000 ms; the margin
 * is for a loaded machine, not a measurement.
 */
const _DEADLINE_MS = 10_000;

/** Names `add` must refuse with `bad_request`. */
const _BAD_NAMES = [
  "",
  "Ada",
  "ADA",
  ".ada",
  "-ada",
  "a b",
  "a/b",
  "../ada",
  "ada\u0000",
  "ädа",
  "a".repeat(33),
];

async function _refused(p: Promise<unknown>, code: string): Promise<void> {
  const e = await assertRejects(() => p, RequestError);
  assertEquals(e.code, code, e.message);
}

/** Polls `ok` every 20 ms until it holds or the deadline passes; returns whether it held. */
async function _eventually(ok: () => boolean): Promise<boolean> {
  for (let i = 0; i < _DEADLINE_MS / 20 && !ok(); i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  return ok();
}

function _names(changes: AccountChange[]): [string, boolean][] {
  return changes.map((c) => [c.name, c.account !== undefined]);
}

/** Registers the contract's tests for one implementation, named `[label] …`. */
export function runAccountsContract(label: string, open: AccountsFactory): void {
  const test = (name: string, fn: (t: Deno.TestContext) => Promise<void>) =>
    Deno.test(`[${label}] ${name}`, fn);

  test("an added account is returned by get, peek, list and verifierFor at once", async (t) => {
    await using accounts = await open(t);
    const key = await accounts.add("ada", { admin: true });
    assertMatch(key, /^[0-9a-f]{64}$/);
    const got = await accounts.get("ada");
    if (!got) throw new Error("get missed the new account");
    assertEquals({ ...got, created: "", keyId: "" }, {
      name: "ada",
      admin: true,
      exec: false,
      created: "",
      keyId: "",
    });
    assert(!Number.isNaN(Date.parse(got.created)), `created is not a date: ${got.created}`);
    assert(got.keyId.length > 0);
    assert(!got.keyId.includes(key) && !key.includes(got.keyId), "keyId must not reveal the key");
    assertEquals(accounts.peek("ada"), got);
    assertEquals(await accounts.list(), [got]);
    const login = await accounts.verifierFor("ada");
    assertEquals(login?.verifier.storedKey, verifierOf(decodeHex(key)).storedKey);
    assertEquals(login?.account, got);
    assertEquals(Object.keys(got).includes("key"), false, "an account carries no key");
    assertEquals(login?.verifier.serverKey, verifierOf(decodeHex(key)).serverKey);
  });

  test("unknown names are absent, not errors", async (t) => {
    await using accounts = await open(t);
    assertEquals(await accounts.get("nobody"), undefined);
    assertEquals(accounts.peek("nobody"), undefined);
    assertEquals(await accounts.verifierFor("nobody"), undefined);
    assertEquals(await accounts.list(), []);
  });

  test("add refuses bad names with bad_request and a taken name with exists", async (t) => {
    await using accounts = await open(t);
    for (const name of _BAD_NAMES) {
      await _refused(accounts.add(name), "bad_request");
    }
    assertEquals(await accounts.list(), [], "a refused name was stored");
    const key = await accounts.add("ada");
    await _refused(accounts.add("ada", { admin: true }), "exists");
    assertEquals(
      (await accounts.verifierFor("ada"))?.verifier.storedKey,
      verifierOf(decodeHex(key)).storedKey,
      "the refused add changed ada",
    );
    assertEquals((await accounts.get("ada"))?.admin, false);
  });

  test("names at the edges of the rules are accepted", async (t) => {
    await using accounts = await open(t);
    for (const name of ["a", "0", "_x", "a.b-c_d", "z".repeat(32)]) await accounts.add(name);
    assertEquals((await accounts.list()).length, 5);
  });

  test("list returns every account sorted by name", async (t) => {
    await using accounts = await open(t);
    for (const name of ["mo", "ada", "zed", "bob", "ad"]) await accounts.add(name);
    assertEquals((await accounts.list()).map((a) => a.name), ["ad", "ada", "bob", "mo", "zed"]);
  });

  test("setRights changes only the rights given and keeps the key", async (t) => {
    await using accounts = await open(t);
    const key = await accounts.add("ada", { exec: true });
    const before = await accounts.get("ada");
    const after = await accounts.setRights("ada", { admin: true });
    assertEquals(after, { ...before!, admin: true, exec: true });
    assertEquals(await accounts.get("ada"), after);
    assertEquals(accounts.peek("ada"), after);
    assertEquals(before?.admin, false, "the old record was modified instead of replaced");
    assertEquals((await accounts.setRights("ada", { exec: false })).exec, false);
    assertEquals((await accounts.get("ada"))?.admin, true);
    assertEquals(
      (await accounts.verifierFor("ada"))?.verifier.storedKey,
      verifierOf(decodeHex(key)).storedKey,
    );
  });

  test("rotate gives a new key: the old one stops matching and keyId changes", async (t) => {
    await using accounts = await open(t);
    const old = await accounts.add("ada", { admin: true });
    const before = await accounts.get("ada");
    const fresh = await accounts.rotate("ada");
    assertMatch(fresh, /^[0-9a-f]{64}$/);
    assertNotEquals(fresh, old);
    const login = await accounts.verifierFor("ada");
    assertEquals(login?.verifier.storedKey, verifierOf(decodeHex(fresh)).storedKey);
    assertNotEquals(login?.account.keyId, before?.keyId);
    assertEquals({ ...login?.account, keyId: "" }, { ...before, keyId: "" });
    assertEquals(accounts.peek("ada"), login?.account);
  });

  test("remove deletes; changing or removing a missing account is not_found", async (t) => {
    await using accounts = await open(t);
    await accounts.add("ada");
    await accounts.add("bob");
    await accounts.remove("ada");
    assertEquals(await accounts.get("ada"), undefined);
    assertEquals(accounts.peek("ada"), undefined);
    assertEquals(await accounts.verifierFor("ada"), undefined);
    assertEquals((await accounts.list()).map((a) => a.name), ["bob"]);
    await _refused(accounts.remove("ada"), "not_found");
    await _refused(accounts.setRights("ada", { admin: true }), "not_found");
    await _refused(accounts.rotate("ada"), "not_found");
    assertEquals(await accounts.get("ada"), undefined, "a refused change created the account");
    await accounts.add("ada");
    assert(await accounts.get("ada"), "a removed name can be added again");
  });

  test("subscribers hear of every change, with the new record, before it resolves", async (t) => {
    await using accounts = await open(t);
    const seen: AccountChange[] = [];
    const peeked: (Account | undefined)[] = [];
    const stop = accounts.subscribe((c) => {
      seen.push(c);
      peeked.push(accounts.peek(c.name));
    });
    await accounts.add("ada");
    assertEquals(_names(seen), [["ada", true]], "add");
    await accounts.setRights("ada", { exec: true });
    assertEquals(seen.at(-1)?.account?.exec, true, "setRights");
    const keyId = seen.at(-1)?.account?.keyId;
    await accounts.rotate("ada");
    assertNotEquals(seen.at(-1)?.account?.keyId, keyId, "rotate");
    await accounts.remove("ada");
    assertEquals(_names(seen), [["ada", true], ["ada", true], ["ada", true], ["ada", false]]);
    assertEquals(peeked, seen.map((c) => c.account), "peek lagged behind the notice");
    stop();
    await accounts.add("bob");
    assertEquals(seen.length, 4, "an unsubscribed listener was called");
  });

  test("a refused change tells no subscriber", async (t) => {
    await using accounts = await open(t);
    await accounts.add("ada");
    const seen: AccountChange[] = [];
    using _stop = _subscription(accounts, (c) => seen.push(c));
    await _refused(accounts.add("ada"), "exists");
    await _refused(accounts.add("Nope"), "bad_request");
    await _refused(accounts.remove("bob"), "not_found");
    assertEquals(seen, []);
  });

  test("a listener that throws does not stop the others", async (t) => {
    await using accounts = await open(t);
    const seen: string[] = [];
    using _a = _subscription(accounts, () => {
      throw new Error("listener failure");
    });
    using _b = _subscription(accounts, (c) => seen.push(c.name));
    await accounts.add("ada");
    assertEquals(seen, ["ada"]);
    assert(await accounts.get("ada"));
  });

  test("a change by another instance is seen by get at once and by peek and subscribers soon", async (t) => {
    await using a = await open(t);
    await using b = await open(t, a);
    const seen: AccountChange[] = [];
    using _stop = _subscription(a, (c) => seen.push(c));
    const key = await b.add("bob", { exec: true });
    assertEquals((await a.get("bob"))?.exec, true, "get missed a completed change");
    assertEquals(
      (await a.verifierFor("bob"))?.verifier.storedKey,
      verifierOf(decodeHex(key)).storedKey,
    );
    assert(await _eventually(() => a.peek("bob") !== undefined), "peek never saw the add");
    assert(await _eventually(() => seen.some((c) => c.name === "bob")), "no notice of the add");
    const rotated = await b.rotate("bob");
    assertEquals(
      (await a.verifierFor("bob"))?.verifier.storedKey,
      verifierOf(decodeHex(rotated)).storedKey,
      "verifierFor missed a rotation",
    );
    await b.remove("bob");
    assert(await _eventually(() => a.peek("bob") === undefined), "peek never saw the removal");
    assert(
      await _eventually(() => seen.at(-1)?.name === "bob" && seen.at(-1)?.account === undefined),
      `no notice of the removal: ${JSON.stringify(_names(seen))}`,
    );
    assertEquals((await b.list()).map((x) => x.name), []);
  });

  test("concurrent changes from two instances never undo one another", async (t) => {
    await using a = await open(t);
    await using b = await open(t, a);
    const names = (p: string) => Array.from({ length: 8 }, (_, i) => `${p}${i}`);
    await Promise.all([
      ...names("a").map((n) => a.add(n)),
      ...names("b").map((n) => b.add(n)),
    ]);
    const all = [...names("a"), ...names("b")].sort();
    assertEquals((await a.list()).map((x) => x.name), all);
    assertEquals((await b.list()).map((x) => x.name), all);
    // The same name from both sides: exactly one add wins.
    const results = await Promise.allSettled([a.add("same"), b.add("same")]);
    assertEquals(results.filter((r) => r.status === "fulfilled").length, 1);
    const loser = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    assertEquals((loser.reason as RequestError).code, "exists");
    const winner = results.find((r) => r.status === "fulfilled") as PromiseFulfilledResult<string>;
    assertEquals(
      (await a.verifierFor("same"))?.verifier.storedKey,
      verifierOf(decodeHex(winner.value)).storedKey,
    );
    // Rights changed from both sides at once: both changes land.
    await Promise.all([a.setRights("a0", { admin: true }), b.setRights("a0", { exec: true })]);
    const a0 = await b.get("a0");
    assertEquals([a0?.admin, a0?.exec], [true, true]);
  });
}

/** `subscribe` as a disposable, so a test's `using` ends it. */
function _subscription(
  accounts: Accounts,
  listener: (change: AccountChange) => void,
): Disposable {
  const stop = accounts.subscribe(listener);
  return { [Symbol.dispose]: stop };
}
