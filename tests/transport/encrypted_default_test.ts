/**
 * Encrypted by default (DESIGN.md §3, PROTOCOL.md §4): what a passive
 * observer on the wire sees of a default server and of a `--plain` one, and
 * the proofs bound to the certificate through a relay that re-encrypts.
 *
 * @module
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { ChatClient } from "../../client/chat/chat_client.ts";
import { ParleyClient } from "../../client/client.ts";
import { RemoteExec } from "../../client/exec/exec_remote.ts";
import { encodeFrame } from "../../protocol/frame_codec.ts";
import { clientHandshake } from "../../protocol/handshake.ts";
import { RemoteError } from "../../protocol/errors.ts";
import { dialTls } from "../../client/tls_connect.ts";
import { ensureTlsIdentity } from "../../server/tls_identity.ts";
import { TEST_ALLOW } from "../exec/exec_fixtures.ts";
import { putBytes } from "../files/files_fixtures.ts";
import { record, waitFor } from "../chat/chat_helpers.ts";
import { keyBytes, startTestServer, type TestServer } from "../helpers.ts";
import { contains, startRelay, startTlsMitm } from "./relay.ts";

const enc = new TextEncoder();

async function execServer(plain: boolean): Promise<TestServer & { root: string }> {
  const root = await Deno.makeTempDir({ prefix: "parley-wire-exec-" });
  await Deno.chmod(root, 0o711);
  // Unsandboxed: what is looked at here is the wire, not the sandbox (and
  // bubblewrap may be missing where the tests run).
  const t = await startTestServer({
    plain,
    features: { exec: { enabled: true, allow: TEST_ALLOW, root, sandbox: false } },
  });
  return {
    ...t,
    root,
    async [Symbol.asyncDispose]() {
      await t[Symbol.asyncDispose]();
      await Deno.remove(root, { recursive: true });
    },
  };
}

/** Sends a chat message, puts a file and runs a command through a recording relay. */
async function traffic(t: TestServer) {
  const marker = crypto.randomUUID().replaceAll("-", "");
  const secret = {
    text: `chat-${marker}`,
    file: `file-${marker}`,
    argv: `argv-${marker}`,
    user: `ada${marker.slice(0, 6)}`,
  };
  const fileBytes = new Uint8Array(300 * 1024);
  for (let i = 0; i < fileBytes.byteLength; i += 64) fileBytes.set(enc.encode(secret.file), i);
  await using relay = startRelay(t.port);
  // The relay only forwards bytes: a TLS client pins the real server's certificate through it.
  const via = async (name: string) => {
    const user = `${name}${marker.slice(0, 6)}`;
    return await ParleyClient.connect({
      host: "127.0.0.1",
      port: relay.port,
      user,
      key: keyBytes(await t.addUser(user, { exec: true })),
      ...t.clientOptions,
    });
  };
  // Fresh accounts per run (the names are part of what is looked for too).
  const ada = await via("ada");
  const bob = await via("bob");
  try {
    const chatA = await ChatClient.start(ada);
    const chatB = await ChatClient.start(bob);
    const seen = record(chatB);
    await chatA.join("lobby");
    await chatB.join("lobby");
    await chatA.send({ room: "lobby" }, secret.text);
    await waitFor(() => seen.msgs.some((m) => m.text === secret.text), "bob got the message");
    await putBytes(ada, `${secret.file}.bin`, fileBytes);
    const out: Uint8Array[] = [];
    const run = RemoteExec.start(ada, { argv: ["echo", secret.argv] }, {
      stdout: (b) => void out.push(b),
      stderr: () => {},
    });
    run.endInput();
    const result = await run.done;
    assertEquals(result.code, 0);
    assertStringIncludes(new TextDecoder().decode(out[0] ?? new Uint8Array()), secret.argv);
    chatA.close();
    chatB.close();
  } finally {
    await ada.close();
    await bob.close();
  }
  const { toServer, toClient } = relay.captured();
  return { secret, toServer, toClient };
}

Deno.test("a default server: the wire shows no chat text, file bytes or exec argv", async () => {
  await using t = await execServer(false);
  assert(t.fingerprint?.startsWith("sha256:"));
  const { secret, toServer, toClient } = await traffic(t);
  assert(toServer.byteLength > 300 * 1024, "the upload went through the relay");
  for (const [what, text] of Object.entries(secret)) {
    for (
      const [dir, bytes] of [["to the server", toServer], ["to the client", toClient]] as const
    ) {
      assertEquals(contains(bytes, enc.encode(text)), false, `${what} seen ${dir}`);
    }
  }
  assertEquals(contains(toServer, enc.encode('"t":"hello"')), false, "the handshake is hidden");
});

Deno.test("a --plain server: the same capture shows everything (the capture works)", async () => {
  await using t = await execServer(true);
  assertEquals(t.fingerprint, undefined);
  const { secret, toServer, toClient } = await traffic(t);
  assert(contains(toServer, enc.encode(secret.text)), "chat text in plaintext");
  assert(contains(toServer, enc.encode(secret.file)), "file bytes in plaintext");
  assert(contains(toServer, enc.encode(secret.argv)), "argv in plaintext");
  assert(contains(toClient, enc.encode(secret.text)), "the delivered message in plaintext");
});

Deno.test("--plain keeps the frame MAC; TLS binds the login to the certificate and drops it", async () => {
  await using plain = await startTestServer({ plain: true });
  const key = keyBytes(await plain.addUser("ada"));
  const tcp = await Deno.connect({ hostname: "127.0.0.1", port: plain.port });
  try {
    const link = await clientHandshake(tcp, { user: "ada", key });
    assert(link.sendMac && link.recvMac, "plaintext frames carry a MAC");
    assertEquals(link.channelBound, false);
  } finally {
    tcp.close();
  }
  await using tls = await startTestServer({ plain: false });
  const key2 = keyBytes(await tls.addUser("ada"));
  const dialed = await dialTls({ host: "127.0.0.1", port: tls.port, pin: tls.fingerprint });
  try {
    const link = await clientHandshake(dialed.transport, {
      user: "ada",
      key: key2,
      channelBinding: dialed.channelBinding,
    });
    assertEquals([link.sendMac, link.recvMac, link.channelBound], [undefined, undefined, true]);
  } finally {
    dialed.transport.close();
  }
  // Each side must agree on the transport: a login that claims no TLS over TLS fails.
  const lying = await dialTls({ host: "127.0.0.1", port: tls.port, pin: tls.fingerprint });
  try {
    const e = await assertRejects(() =>
      clientHandshake(lying.transport, { user: "ada", key: key2 })
    );
    assertEquals((e as RemoteError).code, "auth_failed");
  } finally {
    lying.transport.close();
  }
});

Deno.test("a relay that presents its own certificate cannot log in as the user", async () => {
  await using t = await startTestServer({ plain: false });
  const key = await t.addUser("ada");
  const mitmDir = await Deno.makeTempDir({ prefix: "parley-mitm-" });
  try {
    const identity = await ensureTlsIdentity(mitmDir);
    await using mitm = startTlsMitm(t.port, identity);
    // The user was talked into trusting the relay's certificate: TLS to it works.
    const e = await assertRejects(() =>
      ParleyClient.connect({
        host: "127.0.0.1",
        port: mitm.port,
        user: "ada",
        key: keyBytes(key),
        tls: true,
        pin: identity.fingerprint,
      })
    );
    assert(e instanceof RemoteError, String(e));
    assertEquals(e.code, "auth_failed");
    assert(mitm.captured().toServer.byteLength > 0, "the login did go through the relay");
    // The same client directly to the server logs in.
    const ok = await t.connect("ada");
    assertEquals(await ok.call("diag.echo", { x: 1 }), { x: 1 });
  } finally {
    await Deno.remove(mitmDir, { recursive: true });
  }
});

Deno.test("a version 2 client is told clearly by a version 1 server, and a TLS client by a --plain one", async () => {
  // A server of protocol version 1 answers a version 2 hello as version 1 servers do.
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const old = (async () => {
    using conn = await listener.accept();
    await conn.read(new Uint8Array(4096));
    await conn.write(encodeFrame({
      t: "error",
      code: "unsupported_version",
      msg: "protocol version 2 is not supported (this side speaks 1); upgrade the older side",
    }));
  })();
  const port = (listener.addr as Deno.NetAddr).port;
  const e = await assertRejects(() =>
    ParleyClient.connect({
      host: "127.0.0.1",
      port,
      user: "ada",
      key: new Uint8Array(32),
      tls: false,
    })
  );
  assert(e instanceof RemoteError, String(e));
  assertEquals(e.code, "unsupported_version");
  assertStringIncludes(e.message, "this side speaks 1");
  await old;
  // A TLS client (the default) against a --plain server: told to use --plain.
  await using plain = await startTestServer({ plain: true });
  const tls = await assertRejects(() =>
    ParleyClient.connect({
      host: "127.0.0.1",
      port: plain.port,
      user: "ada",
      key: new Uint8Array(32),
      tls: true,
      acceptNew: true,
      knownServers: "/nonexistent/known_servers",
    })
  );
  assertStringIncludes((tls as Error).message, "--plain");
});
