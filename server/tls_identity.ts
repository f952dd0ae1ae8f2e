/**
 * The server's TLS identity: a certificate and its private key, and the
 * fingerprint clients pin (`sha256:` and the hex SHA-256 of the
 * certificate's DER bytes). On first start a server with no `--tls-cert`
 * makes an ECDSA P-256 key pair and a self-signed certificate with WebCrypto
 * and writes both to its data dir (mode 0600); later starts reuse them, so
 * the fingerprint stays the same.
 *
 * @example
 * ```ts ignore
 * const id = await ensureTlsIdentity("./parley-data");
 * console.log(id.fingerprint); // sha256:…
 * ```
 *
 * @module
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { createHash } from "node:crypto";
import { join } from "@std/path";

/** Certificate and key file names in the data dir. */
export const TLS_CERT_FILE = "tls_cert.pem";
/** See {@linkcode TLS_CERT_FILE}. */
export const TLS_KEY_FILE = "tls_key.pem";

/** A certificate and key to serve TLS with. */
export interface TlsIdentity {
  /** PEM certificate (chain), as given to `Deno.listenTls`. */
  certPem: string;
  /** PEM private key. */
  keyPem: string;
  /** DER bytes of the (first) certificate. */
  der: Uint8Array;
  /** SHA-256 of {@linkcode der}: the channel binding of the login proofs. */
  hash: Uint8Array;
  /** `sha256:<hex>` of {@linkcode der}: what clients pin. */
  fingerprint: string;
}

/** `sha256:<hex>` of a SHA-256 digest. */
export function formatFingerprint(hash: Uint8Array): string {
  return `sha256:${Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** Builds the identity of a PEM certificate (chain) and key. */
export function tlsIdentity(certPem: string, keyPem: string): TlsIdentity {
  let der: Uint8Array;
  try {
    der = new Uint8Array(new x509.X509Certificate(certPem).rawData);
  } catch (e) {
    throw new TypeError(`invalid TLS certificate: ${(e as Error).message}`, { cause: e });
  }
  const hash = new Uint8Array(createHash("sha256").update(der).digest());
  return { certPem, keyPem, der, hash, fingerprint: formatFingerprint(hash) };
}

/** Reads a PEM certificate and key from files (`--tls-cert`, `--tls-key`). */
export async function readTlsIdentity(certFile: string, keyFile: string): Promise<TlsIdentity> {
  return tlsIdentity(await Deno.readTextFile(certFile), await Deno.readTextFile(keyFile));
}

/** The data dir's identity, or undefined when none was made yet. */
export async function loadTlsIdentity(dataDir: string): Promise<TlsIdentity | undefined> {
  try {
    return await readTlsIdentity(join(dataDir, TLS_CERT_FILE), join(dataDir, TLS_KEY_FILE));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

/**
 * The data dir's identity, made on first use: an ECDSA P-256 key and a
 * self-signed certificate for `localhost`, `127.0.0.1` and `::1` (clients
 * trust it by fingerprint, not by name), valid for 100 years.
 */
export async function ensureTlsIdentity(dataDir: string): Promise<TlsIdentity> {
  const existing = await loadTlsIdentity(dataDir);
  if (existing) return existing;
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = await crypto.subtle.generateKey(alg, true, ["sign", "verify"]);
  const now = Date.now();
  const serial = Array.from(
    crypto.getRandomValues(new Uint8Array(16)),
    (b, i) => (i === 0 ? b & 0x7f : b).toString(16).padStart(2, "0"),
  ).join("");
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial,
    name: "CN=parley",
    notBefore: new Date(now - 24 * 3600_000),
    notAfter: new Date(now + 100 * 365 * 24 * 3600_000),
    keys,
    signingAlgorithm: alg,
    extensions: [
      new x509.SubjectAlternativeNameExtension([
        { type: "dns", value: "localhost" },
        { type: "ip", value: "127.0.0.1" },
        { type: "ip", value: "::1" },
      ]),
    ],
  });
  const keyPem = x509.PemConverter.encode(
    await crypto.subtle.exportKey("pkcs8", keys.privateKey),
    "PRIVATE KEY",
  );
  const certPem = cert.toString("pem") + "\n";
  // Two processes may start on a new data dir at once (`parley serve` and
  // `parley user add`): the first to create the key file wins, and the
  // other waits for the winner's certificate instead of mixing the pairs.
  if (!(await _createOnce(join(dataDir, TLS_KEY_FILE), keyPem + "\n"))) {
    return await _waitForIdentity(dataDir);
  }
  await _createOnce(join(dataDir, TLS_CERT_FILE), certPem);
  return tlsIdentity(certPem, keyPem);
}

/** Creates `path` with `text` (mode 0600) unless it exists; false when it did. */
async function _createOnce(path: string, text: string): Promise<boolean> {
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(tmp, text, { createNew: true, mode: 0o600 });
  try {
    await Deno.link(tmp, path); // fails when the file exists: never replaces it
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) return false;
    throw e;
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
}

async function _waitForIdentity(dataDir: string): Promise<TlsIdentity> {
  for (let i = 0; i < 100; i++) {
    const id = await loadTlsIdentity(dataDir);
    if (id) return id;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new TypeError(
    `cannot read the TLS certificate in ${dataDir}: ${TLS_KEY_FILE} exists without ` +
      `${TLS_CERT_FILE}; remove ${TLS_KEY_FILE} to make a new certificate`,
  );
}
