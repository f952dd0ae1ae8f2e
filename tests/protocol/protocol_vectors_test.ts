/**
 * The worked example in PROTOCOL.md §11 is read out of the document and
 * checked against the implementation, so the spec cannot drift from the code.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import {
  authMessage,
  clientKeyOf,
  clientProof,
  deriveSessionKeys,
  FrameMac,
  NO_CHANNEL_BINDING,
  serverSignature,
  verifierOf,
  verifyClientProof,
} from "../../protocol/auth.ts";
import { clientHandshake, serverHandshake } from "../../protocol/handshake.ts";
import { type DecodedFrame, FrameDecoder } from "../../protocol/frame_codec.ts";
import { encodeBatchBody, splitBatch } from "../../protocol/frame_batch.ts";
import { MAC_LENGTH, PROTOCOL_VERSION } from "../../protocol/limits.ts";
import { Session } from "../../protocol/session.ts";
import { ROOT } from "../helpers.ts";
import { concat, hex, memoryPipe, unhex } from "./protocol_fixture.ts";

type Vectors = Map<string, string | Uint8Array>;

/** Parses every ```vector block of the document into name → value. */
function parseVectors(markdown: string): Vectors {
  const out: Vectors = new Map();
  const blocks = [...markdown.matchAll(/^```vector\n([\s\S]*?)^```/gm)];
  for (const [, body] of blocks) {
    let last: { name: string; text: string } | undefined;
    const flush = () => {
      if (!last) return;
      const { name, text } = last;
      if (out.has(name)) throw new Error(`vector ${name} defined twice`);
      if (name.endsWith(".header")) out.set(name, text);
      else if (text.startsWith('"')) out.set(name, JSON.parse(text) as string);
      else out.set(name, unhex(text));
    };
    for (const line of body!.split("\n")) {
      if (line.trim() === "") continue;
      if (/^\s/.test(line)) {
        if (!last) throw new Error(`continuation without a value: ${line}`);
        last.text += line.trim();
        continue;
      }
      flush();
      const m = /^([a-z0-9_.]+)\s*=\s(.*)$/.exec(line);
      if (!m) throw new Error(`not a vector line: ${line}`);
      last = { name: m[1]!, text: m[2]!.trim() };
    }
    flush();
  }
  return out;
}

const _doc = await Deno.readTextFile(join(ROOT, "PROTOCOL.md"));
const V = parseVectors(_doc);
const _td = new TextDecoder();

function bytes(name: string): Uint8Array {
  const v = V.get(name);
  if (!(v instanceof Uint8Array)) throw new Error(`PROTOCOL.md has no hex vector ${name}`);
  return v;
}
function text(name: string): string {
  const v = V.get(name);
  if (typeof v !== "string") throw new Error(`PROTOCOL.md has no text vector ${name}`);
  return v;
}
/** Compares as hex so a failure shows the value the document should hold. */
function assertHex(actual: Uint8Array, name: string): void {
  assertEquals(hex(actual), hex(bytes(name)), `PROTOCOL.md vector ${name}`);
}

function wire(f: DecodedFrame): Uint8Array {
  const prefix = new Uint8Array(4);
  new DataView(prefix.buffer).setUint32(0, f.headerBytes.byteLength);
  return concat([prefix, f.headerBytes, f.body, f.tag ?? new Uint8Array(0)]);
}

function splitFrames(chunks: Uint8Array[]): DecodedFrame[] {
  const dec = new FrameDecoder();
  dec.push(concat(chunks));
  const out: DecodedFrame[] = [];
  for (let f = dec.next(); f; f = dec.next()) {
    out.push(f);
    if (out.length === 2) dec.tagLength = MAC_LENGTH; // after hello+auth / challenge+welcome
  }
  assertEquals(dec.buffered, 0);
  return out;
}

const key = bytes("input.key");
const user = text("input.user");
const cn = bytes("input.client_nonce");
const sn = bytes("input.server_nonce");
const base = {
  version: PROTOCOL_VERSION,
  user,
  clientNonce: cn,
  serverNonce: sn,
  channelBinding: NO_CHANNEL_BINDING,
};
const clientKey = clientKeyOf(key);

/** Replays the example: handshake with the fixed nonces, then the three client frames. */
async function runExample(): Promise<{ client: DecodedFrame[]; server: DecodedFrame[] }> {
  const [c, s] = memoryPipe();
  const [cl, sl] = await Promise.all([
    clientHandshake(c, { user, key, nonce: cn }),
    serverHandshake(s, {
      verifierFor: (u) => (u === user ? verifierOf(key) : undefined),
      nonce: sn,
    }),
  ]);
  const server = new Session({
    ...sl,
    onRequest: async (req) => {
      if (!req.stream) return req.args;
      let n = 0;
      for (let b = await req.stream.read(); b; b = await req.stream.read()) n += b.byteLength;
      return { bytes: n };
    },
  });
  const client = new Session(cl);
  assertEquals(await client.call("diag.echo", { text: "hi" }), { text: "hi" });
  const { stream, result } = client.open("diag.sink", {});
  const wrote = stream.write(new TextEncoder().encode("hello"));
  stream.end();
  await wrote;
  assertEquals(await result, { bytes: 5 });
  assertEquals(await stream.read(), null);
  // §11.9: two pings queued in one turn go as one batch frame, and so do their pongs.
  await Promise.all([client.ping(), client.ping()]);
  await client.close();
  await server.closed;
  return { client: splitFrames(c.written), server: splitFrames(s.written) };
}

Deno.test("PROTOCOL.md holds every vector of the worked example", () => {
  const names = [
    "input.key",
    "hello.frame",
    "challenge.frame",
    "verifier.client_key",
    "verifier.stored_key",
    "verifier.server_key",
    "auth.message",
    "client.signature",
    "client.proof",
    "auth.frame",
    "server.signature",
    "welcome.frame",
    "tls.channel_binding",
    "tls.auth_message",
    "tls.client_proof",
    "tls.server_signature",
    "hkdf.salt",
    "hkdf.info_c2s",
    "hkdf.info_s2c",
    "key.c2s",
    "key.s2c",
    "req.mac_input",
    "req.mac",
    "req.frame",
    "res.frame",
    "open.frame",
    "data.body",
    "data.digest",
    "data.frame",
    "batch.header",
    "batch.body",
    "batch.mac_input",
    "batch.mac",
    "batch.frame",
    "pongs.body",
    "pongs.frame",
  ];
  for (const n of names) assert(V.has(n), `missing vector ${n}`);
  assertEquals(key.byteLength, 32);
  assertEquals(cn.byteLength, 32);
  assertEquals(sn.byteLength, 32);
});

Deno.test("the example's verifier and proofs match the described derivation", async () => {
  const v = verifierOf(key);
  assertHex(clientKey, "verifier.client_key");
  assertHex(v.storedKey, "verifier.stored_key");
  assertHex(v.serverKey, "verifier.server_key");
  const hmac = async (k: Uint8Array, m: Uint8Array) => {
    const ck = await crypto.subtle.importKey(
      "raw",
      k.slice(),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    return new Uint8Array(await crypto.subtle.sign("HMAC", ck, m.slice()));
  };
  // Independently of the implementation: the documented formulas over WebCrypto.
  assertHex(await hmac(key, new TextEncoder().encode("parley client key")), "verifier.client_key");
  assertHex(
    new Uint8Array(await crypto.subtle.digest("SHA-256", clientKey.slice())),
    "verifier.stored_key",
  );
  assertHex(await hmac(key, new TextEncoder().encode("parley server key")), "verifier.server_key");
  assertHex(authMessage(base), "auth.message");
  const signature = await hmac(v.storedKey, authMessage(base));
  assertHex(signature, "client.signature");
  assertHex(clientKey.map((b, i) => b ^ signature[i]!), "client.proof");
  assertHex(clientProof(key, base), "client.proof");
  assertHex(await hmac(v.serverKey, authMessage(base)), "server.signature");
  assertHex(serverSignature(v.serverKey, base), "server.signature");
  assertEquals(verifyClientProof(bytes("client.proof"), v, base), clientKey);
});

Deno.test("the example over TLS binds the certificate hash into both proofs", () => {
  const v = verifierOf(key);
  const tls = { ...base, channelBinding: bytes("tls.channel_binding") };
  assertHex(authMessage(tls), "tls.auth_message");
  assertHex(clientProof(key, tls), "tls.client_proof");
  assertHex(serverSignature(v.serverKey, tls), "tls.server_signature");
  // A proof made for one certificate does not verify for another (or for plaintext).
  assertEquals(verifyClientProof(bytes("tls.client_proof"), v, base), undefined);
  assertEquals(verifyClientProof(bytes("client.proof"), v, tls), undefined);
});

Deno.test("the example's session keys match HKDF as described", () => {
  const keys = deriveSessionKeys(clientKey, user, cn, sn);
  assertHex(concat([cn, sn]), "hkdf.salt");
  assertHex(new TextEncoder().encode(`parley-c2s\0${user}`), "hkdf.info_c2s");
  assertHex(new TextEncoder().encode(`parley-s2c\0${user}`), "hkdf.info_s2c");
  assertHex(keys.clientToServer, "key.c2s");
  assertHex(keys.serverToClient, "key.s2c");
});

Deno.test("the example's frame MACs match FrameMac over the documented input", () => {
  const keys = deriveSessionKeys(clientKey, user, cn, sn);
  const c2s = new FrameMac(keys.clientToServer);
  const s2c = new FrameMac(keys.serverToClient);
  // The example's frames in sending order; the batch is one frame with one seq (§4.6, §5.5).
  const cases = [
    ["req", c2s, 0n],
    ["res", s2c, 0n],
    ["open", c2s, 1n],
    ["data", c2s, 2n],
  ] as const;
  for (const [name, mac, seq] of cases) {
    assertEquals(mac.seq, seq);
    const header = new TextEncoder().encode(text(`${name}.header`));
    // Under `digest` (§4.7) a data frame's tag covers its stream's SHA-256, not its body.
    const body = V.has(`${name}.digest`)
      ? bytes(`${name}.digest`)
      : V.has(`${name}.body`)
      ? bytes(`${name}.body`)
      : new Uint8Array(0);
    const input = new Uint8Array(12);
    const view = new DataView(input.buffer);
    view.setBigUint64(0, seq);
    view.setUint32(8, header.byteLength);
    if (V.has(`${name}.mac_input`)) assertHex(concat([input, header, body]), `${name}.mac_input`);
    assertHex(mac.next(header, body), `${name}.mac`);
  }
});

Deno.test("the example's data frame digest is the SHA-256 of the stream's bytes (§4.7)", async () => {
  // Independently of the implementation: WebCrypto over the one body the stream carried.
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes("data.body").slice()));
  assertHex(d, "data.digest");
});

Deno.test("the example's tags are HMAC-SHA256 of the documented inputs, computed with WebCrypto", async () => {
  // What a client written from PROTOCOL.md alone computes: no code of protocol/ involved.
  const sign = async (k: Uint8Array, m: Uint8Array) => {
    const ck = await crypto.subtle.importKey(
      "raw",
      k.slice(),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    return new Uint8Array(await crypto.subtle.sign("HMAC", ck, m.slice()));
  };
  for (const name of ["req", "open", "data", "batch"]) {
    assertHex(await sign(bytes("key.c2s"), bytes(`${name}.mac_input`)), `${name}.mac`);
  }
  assertHex(await sign(bytes("key.s2c"), bytes("res.mac_input")), "res.mac");
  // The data frame's input ends with the stream's SHA-256 (§4.7), not with its body.
  const input = bytes("data.mac_input");
  assertHex(input.subarray(input.byteLength - 32), "data.digest");
});

Deno.test("the example's batch frame is as §5.5 describes: inner frames under one MAC", () => {
  const keys = deriveSessionKeys(clientKey, user, cn, sn);
  const c2s = new FrameMac(keys.clientToServer);
  for (let i = 0; i < 3; i++) c2s.next(new Uint8Array(1), new Uint8Array(0)); // seq 0, 1, 2
  const pings = ['{"t":"ping","id":1}', '{"t":"ping","id":2}'].map((t) =>
    new TextEncoder().encode(t)
  );
  // Independently of the implementation: each inner frame is u32 H | header.
  const inner = pings.map((h) => {
    const p = new Uint8Array(4);
    new DataView(p.buffer).setUint32(0, h.byteLength);
    return concat([p, h]);
  });
  assertHex(concat(inner), "batch.body");
  assertHex(encodeBatchBody(pings), "batch.body");
  const header = new TextEncoder().encode(text("batch.header"));
  assertEquals(JSON.parse(text("batch.header")), {
    t: "batch",
    len: bytes("batch.body").byteLength,
  });
  const input = new Uint8Array(12);
  new DataView(input.buffer).setBigUint64(0, 3n);
  new DataView(input.buffer).setUint32(8, header.byteLength);
  assertHex(concat([input, header, bytes("batch.body")]), "batch.mac_input");
  assertHex(c2s.next(header, bytes("batch.body")), "batch.mac");
  const prefix = new Uint8Array(4);
  new DataView(prefix.buffer).setUint32(0, header.byteLength);
  assertHex(concat([prefix, header, bytes("batch.body"), bytes("batch.mac")]), "batch.frame");
  assertEquals(
    splitBatch(bytes("pongs.body")).map((f) => f.header),
    [{ t: "pong", id: 1 }, { t: "pong", id: 2 }],
  );
});

Deno.test("the example's frames are exactly what the implementation sends", async () => {
  const { client, server } = await runExample();
  const expectClient = ["hello", "auth", "req", "open", "data", "batch"];
  const expectServer = ["challenge", "welcome", "res"];
  for (const [i, name] of expectClient.entries()) {
    assertEquals(_td.decode(client[i]!.headerBytes), text(`${name}.header`), `${name}.header`);
    assertHex(wire(client[i]!), `${name}.frame`);
  }
  for (const [i, name] of expectServer.entries()) {
    assertEquals(_td.decode(server[i]!.headerBytes), text(`${name}.header`), `${name}.header`);
    assertHex(wire(server[i]!), `${name}.frame`);
  }
  // The prose after the example names the server's last two frames.
  assertEquals(
    _td.decode(server[3]!.headerBytes),
    '{"t":"res","id":2,"ok":true,"data":{"bytes":5}}',
  );
  assertEquals(_td.decode(server[4]!.headerBytes), '{"t":"data","s":1,"fin":true}');
  assertEquals(_td.decode(server[5]!.headerBytes), text("batch.header"));
  assertHex(server[5]!.body, "pongs.body");
  assertHex(wire(server[5]!), "pongs.frame");
  assertEquals(server.length, 6);
  assertEquals(client.length, 6);
});

Deno.test("the vector parser rejects a malformed block", () => {
  let threw = false;
  try {
    parseVectors("```vector\nnot a vector line\n```\n");
  } catch {
    threw = true;
  }
  assert(threw);
  const ok = parseVectors('```vector\na.b = 00ff\n    10\nc.header = {"t":"x"}\nd = "ada"\n```\n');
  assertEquals(ok.get("a.b"), new Uint8Array([0, 255, 16]));
  assertEquals(ok.get("c.header"), '{"t":"x"}');
  assertEquals(ok.get("d"), "ada");
});
