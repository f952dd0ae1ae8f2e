/**
 * Throughput of the wire layer over loopback TCP between two processes.
 *
 * - `codec`: frames encoded with a MAC trailer by the sender, decoded by a
 *   FrameReader and verified by FrameMac on the receiver (no Session).
 * - `session`: the full stack: handshake, then a Session stream of the same
 *   size with flow control, round-robin writer and MACs.
 *
 * The parent process receives and times; a child process (this file with
 * `--child`) sends. Run:
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 --allow-run --allow-read bench/codec_throughput.ts [--bytes 1073741824] [--layer codec|session|both] [--chunk 262144]
 * ```
 *
 * @module
 */
import { parseArgs } from "@std/cli/parse-args";
import { FrameMac, verifierOf } from "../protocol/auth.ts";
import { encodeHeader } from "../protocol/frame_codec.ts";
import { clientHandshake, serverHandshake } from "../protocol/handshake.ts";
import { DEFAULT_CHUNK, MAC_LENGTH } from "../protocol/limits.ts";
import { Session } from "../protocol/session.ts";
import { FrameReader, writeAll } from "../protocol/transport.ts";

const HELP = `Usage: codec_throughput.ts [options]

Measures frame codec + MAC throughput over loopback TCP between two processes.

Options:
  --bytes N      bytes to send per layer (default 1073741824 = 1 GiB)
  --layer L      codec, session or both (default both)
  --chunk N      body bytes per frame / per stream write (default 262144)
  --help         show this help
`;

/** A fixed key: both processes derive the same MAC keys from it. */
const KEY = Uint8Array.from({ length: 32 }, (_, i) => i);

type Layer = "codec" | "session";

interface Result {
  layer: Layer;
  bytes: number;
  seconds: number;
}

function mbps(r: Result): string {
  return (r.bytes / r.seconds / 1e6).toFixed(0);
}

// --- sender (child process) --------------------------------------------------

async function sendCodec(conn: Deno.Conn, total: number, chunk: number): Promise<void> {
  const mac = new FrameMac(KEY);
  const body = crypto.getRandomValues(new Uint8Array(Math.min(chunk, 65536)));
  const payload = new Uint8Array(chunk);
  for (let off = 0; off < chunk; off += body.byteLength) {
    payload.set(body.subarray(0, chunk - off), off);
  }
  for (let sent = 0; sent < total;) {
    const n = Math.min(chunk, total - sent);
    sent += n;
    const header = sent === total ? { t: "data", s: 1, fin: true } : { t: "data", s: 1 };
    const hb = encodeHeader(header, n);
    const b = payload.subarray(0, n);
    const frame = new Uint8Array(4 + hb.byteLength + n + MAC_LENGTH);
    new DataView(frame.buffer).setUint32(0, hb.byteLength);
    frame.set(hb, 4);
    frame.set(b, 4 + hb.byteLength);
    frame.set(mac.next(hb, b), 4 + hb.byteLength + n);
    await writeAll(conn, frame);
  }
}

async function sendSession(conn: Deno.Conn, total: number, chunk: number): Promise<void> {
  const link = await clientHandshake(conn, { user: "bench", key: KEY });
  await using session = new Session(link);
  const payload = crypto.getRandomValues(new Uint8Array(Math.min(chunk, 65536)));
  const buf = new Uint8Array(chunk);
  for (let off = 0; off < chunk; off += payload.byteLength) {
    buf.set(payload.subarray(0, chunk - off), off);
  }
  const { stream, result } = session.open("sink", {});
  let prev: Promise<void> | undefined;
  for (let sent = 0; sent < total;) {
    const n = Math.min(chunk, total - sent);
    const w = stream.write(n === chunk ? buf : buf.subarray(0, n));
    if (prev) await prev;
    prev = w;
    sent += n;
  }
  await prev;
  stream.end();
  await result;
}

async function child(port: number, layer: Layer, total: number, chunk: number): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  try {
    if (layer === "codec") await sendCodec(conn, total, chunk);
    else await sendSession(conn, total, chunk);
  } finally {
    try {
      conn.close();
    } catch {
      // the session closed it
    }
  }
}

// --- receiver (parent process) -----------------------------------------------

async function receiveCodec(conn: Deno.Conn, total: number): Promise<Result> {
  const reader = new FrameReader(conn, { maxBody: 16 * 1024 * 1024, tagLength: MAC_LENGTH });
  const mac = new FrameMac(KEY);
  let got = 0;
  let start = 0;
  while (true) {
    const f = await reader.next();
    if (f === null) throw new Error(`stream ended after ${got} of ${total} bytes`);
    if (start === 0) start = performance.now();
    mac.verify(f.headerBytes, f.body, f.tag);
    got += f.body.byteLength;
    if (f.header.fin === true) break;
  }
  const seconds = (performance.now() - start) / 1000;
  if (got !== total) throw new Error(`received ${got} bytes, expected ${total}`);
  return { layer: "codec", bytes: got, seconds };
}

async function receiveSession(conn: Deno.Conn, total: number): Promise<Result> {
  const link = await serverHandshake(conn, { verifierFor: () => verifierOf(KEY) });
  let done!: (r: Result) => void;
  const finished = new Promise<Result>((r) => (done = r));
  const session = new Session({
    ...link,
    onRequest: async (req) => {
      const start = performance.now();
      let got = 0;
      for (let b = await req.stream!.read(); b; b = await req.stream!.read()) got += b.byteLength;
      done({ layer: "session", bytes: got, seconds: (performance.now() - start) / 1000 });
      return { bytes: got };
    },
  });
  const r = await finished;
  await session.closed;
  if (r.bytes !== total) throw new Error(`received ${r.bytes} bytes, expected ${total}`);
  return r;
}

async function run(layer: Layer, total: number, chunk: number): Promise<Result> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const proc = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      "--allow-read",
      new URL(import.meta.url).pathname,
      "--child",
      `--port=${port}`,
      `--layer=${layer}`,
      `--bytes=${total}`,
      `--chunk=${chunk}`,
    ],
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const conn = await listener.accept();
  conn.setNoDelay(true);
  try {
    const result = layer === "codec"
      ? await receiveCodec(conn, total)
      : await receiveSession(conn, total);
    const status = await proc.status;
    if (!status.success) throw new Error(`sender exited with ${status.code}`);
    return result;
  } finally {
    try {
      conn.close();
    } catch {
      // closed by the session
    }
  }
}

async function main(): Promise<number> {
  const args = parseArgs(Deno.args, {
    boolean: ["help", "child"],
    string: ["bytes", "layer", "chunk", "port"],
    default: { bytes: String(2 ** 30), layer: "both", chunk: String(DEFAULT_CHUNK) },
  });
  if (args.help) {
    console.log(HELP);
    return 0;
  }
  const total = Number(args.bytes);
  const chunk = Number(args.chunk);
  if (!Number.isSafeInteger(total) || total <= 0) {
    throw new RangeError("--bytes must be a positive integer");
  }
  if (!Number.isSafeInteger(chunk) || chunk <= 0 || chunk > 1 << 20) {
    throw new RangeError("--chunk must be an integer from 1 to 1048576");
  }
  if (args.child) {
    await child(Number(args.port), args.layer as Layer, total, chunk);
    return 0;
  }
  const layers: Layer[] = args.layer === "both" ? ["codec", "session"] : [args.layer as Layer];
  for (const layer of layers) {
    if (layer !== "codec" && layer !== "session") throw new RangeError(`unknown layer ${layer}`);
    const r = await run(layer, total, chunk);
    console.log(
      `${layer.padEnd(8)} ${(r.bytes / 2 ** 20).toFixed(0)} MiB in ${r.seconds.toFixed(2)} s: ${
        mbps(r)
      } MB/s`,
    );
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main());
