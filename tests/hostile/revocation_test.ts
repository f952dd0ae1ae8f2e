/**
 * Revocation takes effect at once (docs/security.md "Revocation"): removing
 * an account, rotating its key or taking a right away with the real
 * `parley user` command closes that user's open connections on a running
 * server; a right given applies to open connections; a ban closes the
 * banned user's connections, and requests a banned user pipelines right
 * behind the login proof are never run.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { decodeHex, encodeHex } from "@std/encoding/hex";
import { join } from "@std/path";
import { randomBytes } from "node:crypto";
import type { ParleyClient } from "../../client/client.ts";
import {
  clientKeyOf,
  clientProof,
  deriveSessionKeys,
  FrameMac,
  NO_CHANNEL_BINDING,
} from "../../protocol/auth.ts";
import { encodeFrame, type OutHeader } from "../../protocol/frame_codec.ts";
import { RemoteError } from "../../protocol/errors.ts";
import { MAC_LENGTH, NONCE_LENGTH, PROTOCOL_VERSION } from "../../protocol/limits.ts";
import { FrameReader } from "../../protocol/transport.ts";
import { UserStore } from "../../server/embedded/user_store.ts";
import { keyBytes, parleyUser } from "../helpers.ts";
import { startTarget, type Target } from "./harness.ts";
import { concat, dial, macFrame, type Outcome, readUntilClosed, send } from "./raw.ts";

/** How long a change may take to reach a live session before the test fails. */
const DEADLINE_MS = 10_000;

/** Resolves with the code of the error that closed `client`'s session; throws if it stays open. */
async function closedWithin(client: ParleyClient, ms = DEADLINE_MS): Promise<string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const still = Symbol("open");
  const why = await Promise.race([
    client.session.closed,
    new Promise<typeof still>((r) => (timer = setTimeout(() => r(still), ms))),
  ]);
  clearTimeout(timer);
  if (why === still) throw new Error(`the session was still open ${ms} ms after the change`);
  return why instanceof RemoteError ? why.code : String(why);
}

/**
 * The error code a fresh login gets, or "ok" when the server still answers a
 * request after it (a refusal after the proof arrives as an `error` frame).
 */
async function loginCode(t: Target, user: string, keyHex: string): Promise<string> {
  const out = await pipelinedLogin(t.port, user, keyHex, [
    { t: "req", id: 1, op: "diag.echo", args: {} },
  ], { untilReply: true });
  if (out.error) return out.error;
  return out.frames.some((f) => f.t === "res" && f.ok === true) ? "ok" : "no reply";
}

/**
 * Logs in with a hand-run handshake and writes the `auth` frame and
 * `requests` (with valid MACs) in one write, before the server's `welcome`
 * could arrive. Reads what the server says until it closes (at most 3 s).
 */
async function pipelinedLogin(
  port: number,
  user: string,
  keyHex: string,
  requests: OutHeader[],
  options: { untilReply?: boolean } = {},
): Promise<Outcome & { welcomed: boolean }> {
  const conn = await dial(port);
  const key = keyBytes(keyHex);
  const reader = new FrameReader(conn, { maxBody: 1024 * 1024 });
  const cn = new Uint8Array(randomBytes(NONCE_LENGTH));
  await send(
    conn,
    encodeFrame({ t: "hello", v: PROTOCOL_VERSION, user, nonce: encodeHex(cn) }),
  );
  const challenge = await reader.next();
  if (challenge?.header.t !== "challenge") {
    conn.close();
    return {
      frames: challenge ? [challenge.header] : [],
      error: challenge?.header.code as string | undefined,
      closed: true,
      welcomed: false,
    };
  }
  const sn = decodeHex(challenge.header.nonce as string);
  const input = {
    version: PROTOCOL_VERSION,
    user,
    clientNonce: cn,
    serverNonce: sn,
    channelBinding: NO_CHANNEL_BINDING,
  };
  const proof = clientProof(key, input);
  const mac = new FrameMac(deriveSessionKeys(clientKeyOf(key), user, cn, sn).clientToServer);
  await send(
    conn,
    concat(
      encodeFrame({ t: "auth", proof: encodeHex(proof) }),
      ...requests.map((r) => macFrame(mac, r)),
    ),
  );
  const welcome = await reader.next();
  if (welcome?.header.t !== "welcome") {
    conn.close();
    return {
      frames: welcome ? [welcome.header] : [],
      error: welcome?.header.code as string | undefined,
      closed: true,
      welcomed: false,
    };
  }
  reader.decoder.tagLength = MAC_LENGTH;
  if (options.untilReply) {
    // Read only up to the first reply or error, then hang up.
    const frames: Outcome["frames"] = [];
    let closed = false;
    while (true) {
      const f = await reader.next().catch(() => null);
      if (f === null) {
        closed = true;
        break;
      }
      frames.push(f.header);
      if (f.header.t === "res" || f.header.t === "error") break;
    }
    conn.close();
    const err = frames.find((f) => f.t === "error");
    return { frames, error: err?.code as string | undefined, closed, welcomed: true };
  }
  // Frames that came in the same read as the welcome are already in the decoder.
  const early: Outcome["frames"] = [];
  for (let f = reader.decoder.next(); f; f = reader.decoder.next()) early.push(f.header);
  const out = await readUntilClosed(conn, { decoder: reader.decoder, timeoutMs: 3000 });
  const frames = [...early, ...out.frames];
  const err = frames.find((f) => f.t === "error");
  return { frames, error: err?.code as string | undefined, closed: out.closed, welcomed: true };
}

Deno.test("parley user remove closes the removed user's open connections at once", async () => {
  await using t = await startTarget({ users: ["observer", "ada", "bob"] });
  const bob = await t.client("bob");
  assertEquals(await bob.call("diag.echo", { n: 1 }), { n: 1 });
  await parleyUser(t.dataDir, "remove", "bob");
  assertEquals(await closedWithin(bob), "auth_failed");
  assertEquals(await loginCode(t, "bob", t.keys.bob!), "auth_failed");
  const ada = await t.client("ada");
  assertEquals(await ada.call("diag.echo", { n: 2 }), { n: 2 }, "other users are not affected");
  await t.baseline(); // users.json changed on purpose
  await t.check("remove");
});

Deno.test("parley user rotate closes the user's connections; only the new key logs in", async () => {
  await using t = await startTarget({ users: ["observer", "bob"] });
  const bob = await t.client("bob");
  const out = await parleyUser(t.dataDir, "rotate", "bob", "--json");
  const fresh = (JSON.parse(out) as { key: string }).key;
  assertEquals(await closedWithin(bob), "auth_failed");
  assertEquals(await loginCode(t, "bob", t.keys.bob!), "auth_failed");
  assertEquals(await loginCode(t, "bob", fresh), "ok");
});

Deno.test("a right given applies to open connections; a right taken away closes them", async () => {
  await using t = await startTarget({ users: ["observer", "ada"] });
  const ada = await t.client("ada");
  const unban = () =>
    ada.call("chat.ban", { user: "nobody", off: true }).then(
      () => "ok",
      (e) => e instanceof RemoteError ? e.code : String(e),
    );
  assertEquals(await unban(), "forbidden");
  await parleyUser(t.dataDir, "set", "ada", "--admin");
  // Not an admin yet: forbidden. An admin: "nobody is not banned".
  let code = await unban();
  for (let i = 0; i < DEADLINE_MS / 100 && code === "forbidden"; i++) {
    await new Promise((r) => setTimeout(r, 100));
    code = await unban();
  }
  assertEquals(code, "not_found", "the new right did not reach the open connection");
  await parleyUser(t.dataDir, "set", "ada", "--no-admin");
  assertEquals(await closedWithin(ada), "forbidden");
});

Deno.test("a ban closes the banned user's open connections at once", async () => {
  await using t = await startTarget({ users: ["observer", "bob"] });
  t.keys.mod = await t.server.addUser("mod", { admin: true });
  const mod = await t.client("mod");
  const bob = await t.client("bob");
  await mod.call("chat.ban", { user: "bob", reason: "test" });
  assertEquals(await closedWithin(bob), "forbidden");
  assertEquals(await loginCode(t, "bob", t.keys.bob!), "forbidden");
});

Deno.test("requests a banned user pipelines behind the login proof are never run", async () => {
  await using t = await startTarget({ users: ["observer", "bob"] });
  const home = join(t.dataDir, "files", "home", "bob");
  await Deno.mkdir(home, { recursive: true, mode: 0o700 });
  await Deno.writeTextFile(join(home, "keep.txt"), "keep me\n");
  t.keys.mod = await t.server.addUser("mod", { admin: true });
  const mod = await t.client("mod");
  await mod.call("chat.ban", { user: "bob" });
  await t.baseline();
  for (let round = 0; round < 5; round++) {
    const out = await pipelinedLogin(t.port, "bob", t.keys.bob!, [
      { t: "req", id: 1, op: "file.mkdir", args: { path: "made" } },
      { t: "req", id: 2, op: "file.rm", args: { path: "keep.txt" } },
      { t: "req", id: 3, op: "diag.echo", args: { ran: true } },
    ]);
    assertEquals(out.error, "forbidden", JSON.stringify(out.frames));
    assert(out.closed, "the server should close a banned user's connection");
    assertEquals(out.frames.filter((f) => f.t === "res"), [], "no request may be answered");
  }
  assertEquals(await Deno.readTextFile(join(home, "keep.txt")), "keep me\n");
  const made = await Deno.stat(join(home, "made")).then(() => true, () => false);
  assertEquals(made, false, "file.mkdir ran for a banned user");
  await t.check("pipelined requests of a banned user");
});

Deno.test("the account store sees another process's change with or without file events", async () => {
  for (const events of [true, false]) {
    const dir = await Deno.makeTempDir({ prefix: "parley-users-" });
    try {
      const server = await UserStore.open(dir);
      await server.add("bob");
      let changes = 0;
      const unsubscribe = server.subscribe(() => changes++);
      const watch = server.watch({ events, pollMs: 100, debounceMs: 20 });
      try {
        // Another process: its own store on the same file.
        await parleyUser(dir, "remove", "bob");
        for (let i = 0; i < DEADLINE_MS / 50 && server.peek("bob") !== undefined; i++) {
          await new Promise((r) => setTimeout(r, 50));
        }
        assertEquals(server.peek("bob"), undefined, `events ${events}: the removal was not seen`);
        assert(changes >= 1, `events ${events}: subscribers were not told`);
      } finally {
        unsubscribe();
        await watch.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});
