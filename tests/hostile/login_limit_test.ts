/**
 * The login limiter counts attempts in flight (docs/security.md "Online key
 * guessing", "Lockout"): parallel guesses cannot all be evaluated against the
 * same count of failures.
 *
 * @module
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { clientHandshake } from "../../protocol/handshake.ts";
import { RemoteError } from "../../protocol/errors.ts";
import { LoginRateLimiter } from "../../server/rate_limit.ts";
import { RequestError } from "../../server/errors.ts";
import { keyBytes } from "../helpers.ts";
import { startTarget } from "./harness.ts";
import { dial } from "./raw.ts";

/** Runs one handshake; returns "ok" or the error code the server sent. */
async function login(port: number, user: string, keyHex: string): Promise<string> {
  const conn = await dial(port);
  let result: string;
  try {
    await clientHandshake(conn, { user, key: keyBytes(keyHex), timeoutMs: 30_000 });
    result = "ok";
  } catch (e) {
    result = e instanceof RemoteError ? e.code : `local: ${(e as Error).message}`;
  }
  try {
    conn.close();
  } catch (e) {
    if (!(e instanceof Deno.errors.BadResource)) throw e;
  }
  return result;
}

Deno.test("60 parallel wrong-key logins for one user: at most the per-user limit are evaluated", async () => {
  await using t = await startTarget({
    limits: { loginFailuresPerUser: 5, loginFailuresPerAddress: 30 },
    users: ["observer", "ada", "bob"],
  });
  const wrong = "ab".repeat(32);
  const results = await Promise.all(
    Array.from({ length: 60 }, () => login(t.port, "bob", wrong)),
  );
  const count = (code: string) => results.filter((r) => r === code).length;
  assert(
    count("auth_failed") <= 5,
    `${count("auth_failed")} guesses were evaluated against a limit of 5: ${results.join(",")}`,
  );
  assertEquals(count("auth_failed") + count("rate_limited"), 60, results.join(","));
  // The lockout is per (address, user): bob's right key from this address waits for the
  // window, ada from the same address is not affected.
  assertEquals(await login(t.port, "bob", t.keys.bob!), "rate_limited");
  assertEquals(await login(t.port, "ada", t.keys.ada!), "ok");
  await t.check("parallel login guesses");
});

Deno.test("parallel logins from one address with many names stop at the per-address limit", async () => {
  await using t = await startTarget({
    limits: { loginFailuresPerUser: 5, loginFailuresPerAddress: 10 },
  });
  const ada = await t.client("ada");
  const wrong = "cd".repeat(32);
  const results = await Promise.all(
    Array.from({ length: 40 }, (_, i) => login(t.port, `guess${i}`, wrong)),
  );
  const failed = results.filter((r) => r === "auth_failed").length;
  assert(failed <= 10, `${failed} guesses were evaluated against an address limit of 10`);
  assertEquals(failed + results.filter((r) => r === "rate_limited").length, 40);
  // The address is now refused for the window, whatever the name; a session
  // opened before the guesses keeps working.
  assertEquals(await login(t.port, "ada", t.keys.ada!), "rate_limited");
  assertEquals(await ada.call("diag.echo", { still: "served" }), { still: "served" });
});

Deno.test("a successful login releases its attempt; a failure stays counted", () => {
  const limiter = new LoginRateLimiter({ perUser: 2, perAddress: 100, windowMs: 60_000 });
  for (let i = 0; i < 10; i++) limiter.release(limiter.admit("10.0.0.1", "ada"));
  const held = [limiter.admit("10.0.0.1", "ada"), limiter.admit("10.0.0.1", "ada")];
  const refuse = () => limiter.admit("10.0.0.1", "ada");
  // Two attempts in flight use up the per-user allowance before either is decided.
  assertThrows(refuse, RequestError, "unfinished logins for ada");
  // From another address the same user is not affected (the lockout is per address and user).
  limiter.release(limiter.admit("10.0.0.2", "ada"));
  limiter.release(held[0]!); // one succeeds
  limiter.release(held[0]!); // releasing twice is harmless
  const again = limiter.admit("10.0.0.1", "ada");
  // held[1] failed (never released) and `again` is in flight: the limit is reached.
  assertThrows(refuse, RequestError);
  limiter.release(again);
  limiter.admit("10.0.0.1", "ada");
});
