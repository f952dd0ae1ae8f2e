/**
 * TLS: `parley serve --tls-cert/--tls-key`, clients that trust a CA file or
 * pin the server certificate, refusals for the wrong trust, and a handshake
 * by `openssl s_client` (requires the `openssl` command).
 *
 * @module
 */
import { assert, assertEquals, assertMatch, assertRejects, assertThrows } from "@std/assert";
import { join } from "@std/path";
import { createHash } from "node:crypto";
import { ParleyClient } from "../client/client.ts";
import { CredentialError, resolveCredentials } from "../client/credentials.ts";
import { parsePin, PinMismatchError } from "../client/tls_connect.ts";
import { keyBytes, ROOT, spawnServer, startTestServer } from "./helpers.ts";

interface CertFiles {
  dir: string;
  cert: string;
  key: string;
  pem: string;
  /** `sha256:<hex>` of the certificate's DER bytes. */
  pin: string;
}

/**
 * Makes a self-signed P-256 certificate for localhost and 127.0.0.1 with
 * openssl. `openssl req -x509` marks it as a CA by default, which a pin
 * accepts but a CA-file check refuses as a server certificate
 * (CaUsedAsEndEntity); `endEntity` marks it CA:FALSE for the CA-file path.
 */
async function makeCert(
  dir?: string,
  options: { endEntity?: boolean } = {},
): Promise<CertFiles & AsyncDisposable> {
  const owned = dir === undefined;
  dir ??= await Deno.makeTempDir({ prefix: "parley-tls-" });
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  const out = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
      ...(options.endEntity ? ["-addext", "basicConstraints=critical,CA:FALSE"] : []),
      "-days",
      "2",
      "-keyout",
      key,
      "-out",
      cert,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  const pem = await Deno.readTextFile(cert);
  const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  const der = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const pin = `sha256:${createHash("sha256").update(der).digest("hex")}`;
  return {
    dir,
    cert,
    key,
    pem,
    pin,
    // Removes the directory only when makeCert made it.
    [Symbol.asyncDispose]: () => owned ? Deno.remove(dir, { recursive: true }) : Promise.resolve(),
  };
}

async function tlsServer(files: CertFiles) {
  return await startTestServer({ tlsCert: files.cert, tlsKey: files.key });
}

Deno.test("a TLS server accepts a client that trusts its certificate through a CA file", async () => {
  await using files = await makeCert(undefined, { endEntity: true });
  await using t = await tlsServer(files);
  assert(t.server.tls);
  const c = await t.connect("ada", { tls: true, caCerts: [files.pem] });
  assertEquals(await c.call("diag.echo", { over: "tls" }), { over: "tls" });
});

Deno.test("a TLS client without the CA refuses a self-signed server certificate", async () => {
  await using files = await makeCert(undefined, { endEntity: true });
  await using t = await tlsServer(files);
  const key = await t.addUser("ada");
  await assertRejects(() =>
    ParleyClient.connect({
      host: "127.0.0.1",
      port: t.port,
      user: "ada",
      key: keyBytes(key),
      tls: true,
    })
  );
  // The server is unharmed.
  const c = await t.connect("bob", { tls: true, caCerts: [files.pem] });
  assertEquals(await c.call("diag.echo", {}), {});
});

Deno.test("a pinned client connects without any CA and moves a stream intact", async () => {
  await using files = await makeCert();
  await using t = await tlsServer(files);
  const c = await t.connect("ada", { tls: true, pin: files.pin });
  assertEquals(await c.call("diag.echo", { pinned: true }), { pinned: true });
  const { stream, result } = c.open("diag.stream", {});
  const data = new Uint8Array(3 * 1024 * 1024 + 5).map((_, i) => (i * 7) & 0xff);
  const reading = (async () => {
    const parts: number[] = [];
    let n = 0;
    for (let b = await stream.read(); b; b = await stream.read()) {
      n += b.byteLength;
      parts.push(b[0]!);
    }
    return n;
  })();
  await stream.write(data);
  stream.end();
  assertEquals(await result, { bytes: data.byteLength });
  assertEquals(await reading, data.byteLength);
});

Deno.test("a client pinned to another certificate refuses the server before logging in", async () => {
  await using files = await makeCert();
  await using other = await makeCert();
  await using t = await tlsServer(files);
  const key = await t.addUser("ada");
  const err = await assertRejects(
    () =>
      ParleyClient.connect({
        host: "127.0.0.1",
        port: t.port,
        user: "ada",
        key: keyBytes(key),
        tls: true,
        pin: other.pin,
      }),
    PinMismatchError,
  );
  assertEquals(err.actual, files.pin);
  // A pin plus a CA that does not vouch for the server is refused too.
  await assertRejects(() =>
    ParleyClient.connect({
      host: "127.0.0.1",
      port: t.port,
      user: "ada",
      key: keyBytes(key),
      tls: true,
      pin: files.pin,
      caCerts: [other.pem],
    })
  );
});

Deno.test("a plain client cannot log in to a TLS server, nor a TLS client to a plain one", async () => {
  await using files = await makeCert();
  await using tls = await tlsServer(files);
  const key = await tls.addUser("ada");
  await assertRejects(() =>
    ParleyClient.connect({
      host: "127.0.0.1",
      port: tls.port,
      user: "ada",
      key: keyBytes(key),
      tls: false,
      timeoutMs: 2000,
    })
  );
  await using plain = await startTestServer();
  const key2 = await plain.addUser("ada");
  await assertRejects(() =>
    ParleyClient.connect({
      host: "127.0.0.1",
      port: plain.port,
      user: "ada",
      key: keyBytes(key2),
      tls: true,
      caCerts: [files.pem],
      timeoutMs: 2000,
    })
  );
});

Deno.test("openssl s_client completes a TLS handshake with the server", async () => {
  await using files = await makeCert();
  await using t = await tlsServer(files);
  const out = await new Deno.Command("openssl", {
    args: [
      "s_client",
      "-connect",
      `127.0.0.1:${t.port}`,
      "-servername",
      "localhost",
      "-CAfile",
      files.cert,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assertMatch(text, /CN ?= ?localhost/);
  assertMatch(text, /Verify return code: 0 \(ok\)/);
  assertMatch(text, /(New|Reused), TLSv1\.[23]/);
});

Deno.test("parley serve --tls-cert/--tls-key and parley ping with --ca or PARLEY_PIN work end to end", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "parley-tls-proc-" });
  const files = await makeCert(dataDir, { endEntity: true });
  const proc = await spawnServer({
    dataDir,
    args: ["--tls-cert", files.cert, "--tls-key", files.key],
  });
  try {
    // The given certificate is served, and its fingerprint printed at start.
    assertEquals(proc.fingerprint, files.pin, proc.output.join("\n"));
    const key = await proc.addUser("ada");
    const ping = async (extra: string[], env: Record<string, string>) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-net=127.0.0.1,localhost",
          `--allow-read=${dataDir}`,
          "--allow-env",
          join(ROOT, "main.ts"),
          "ping",
          `parleys://ada@localhost:${proc.port}`,
          "--count",
          "1",
          ...extra,
        ],
        env: { PARLEY_KEY: key, XDG_CONFIG_HOME: dataDir, NO_COLOR: "1", ...env },
        stdout: "piped",
        stderr: "piped",
      }).output();
      return new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    };
    assertMatch(await ping(["--ca", files.cert], {}), /authenticated as ada/);
    assertMatch(await ping([], { PARLEY_PIN: files.pin }), /authenticated as ada/);
    assertMatch(await ping([], { PARLEY_PIN: `sha256:${"0".repeat(64)}` }), /not the pinned/);
  } finally {
    await proc.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("certificate pins are read in the usual spellings and bad ones are refused", async () => {
  const hex = "ab".repeat(32);
  assertEquals(parsePin(`sha256:${hex}`), `sha256:${hex}`);
  assertEquals(parsePin(`SHA256:${hex.toUpperCase()}`), `sha256:${hex}`);
  assertEquals(parsePin(`sha256:${hex.match(/../g)!.join(":").toUpperCase()}`), `sha256:${hex}`);
  for (const bad of ["", "sha256:", "md5:" + hex, `sha256:${hex.slice(2)}`, hex]) {
    assertThrows(() => parsePin(bad), TypeError);
  }
  const creds = await resolveCredentials({
    url: "parley://ada@127.0.0.1:1",
    key: "00".repeat(32),
    pin: `sha256:${hex}`,
  });
  assertEquals([creds.tls, creds.pin], [true, `sha256:${hex}`]);
  await assertRejects(
    () => resolveCredentials({ url: "parley://ada@h:1", key: "00".repeat(32), pin: "nope" }),
    CredentialError,
  );
});
