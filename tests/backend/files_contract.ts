/**
 * The contract every {@linkcode FilesBackend} keeps (`server/backend/files.ts`),
 * as a suite that runs against any implementation: call
 * {@linkcode filesContract} from a `*_test.ts` file with a factory.
 *
 * @module
 */
import { assert, assertEquals, assertNotEquals, assertRejects } from "@std/assert";
import type { FileLimits, FilesBackend, FileStore, HashGate } from "../../server/backend/files.ts";
import { RequestError } from "../../server/errors.ts";

/** A backend under test, on storage that outlives it. */
export interface FilesFixture extends AsyncDisposable {
  /** The backend open now. */
  readonly backend: FilesBackend;
  /** Closes the backend and opens a new one on the same storage (a restart). */
  reopen(): Promise<FilesBackend>;
}

/** Opens a backend on fresh, empty storage. */
export type FilesFixtureFactory = () => Promise<FilesFixture>;

/** Limits roomy enough for every test but the quota ones. */
export const ROOMY: FileLimits = { quotaBytes: 1 << 30, maxEntries: 1000, maxPartials: 16 };

const _direct: HashGate = (work) => work();

/** Deterministic test bytes. */
export function bytesOf(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
}

/** Lower-case hex SHA-256. */
export async function sha256Hex(b: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", b as Uint8Array<ArrayBuffer>));
  return Array.from(d, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Collects a stream. */
export async function collect(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const c of s) {
    parts.push(c);
    n += c.byteLength;
  }
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

/** Rejects with a `RequestError` carrying `code`. */
export async function rejectsWith(code: string, fn: () => Promise<unknown>): Promise<void> {
  const e = await assertRejects(fn, RequestError);
  assertEquals(e.code, code, e.message);
}

/** Uploads `data` to `parts` in one session, chunked. */
export async function upload(
  store: FileStore,
  user: string,
  parts: string[],
  data: Uint8Array,
  options: { overwrite?: boolean; parents?: boolean; limits?: FileLimits; sha256?: string } = {},
): Promise<void> {
  const sha256 = await sha256Hex(data);
  await using up = await store.beginUpload(
    {
      user,
      parts,
      size: data.byteLength,
      id: { sha256 },
      overwrite: options.overwrite ?? false,
      parents: options.parents ?? false,
    },
    { offset: 0, limits: options.limits ?? ROOMY, hashGate: _direct },
  );
  for (let off = 0; off < data.byteLength; off += 4096) {
    await up.write(data.subarray(off, off + 4096));
  }
  await up.finish(options.sha256 ?? sha256);
}

async function _read(store: FileStore, user: string, parts: string[]): Promise<Uint8Array> {
  await using r = await store.open(user, parts);
  return await collect(r.read());
}

/** Registers the contract tests for the backends `open` makes, named after `name`. */
export function filesContract(name: string, open: FilesFixtureFactory): void {
  const test = (what: string, fn: (f: FilesFixture) => Promise<void>) =>
    Deno.test(`${name}: ${what}`, async () => {
      await using f = await open();
      await fn(f);
    });

  test("an upload is invisible until it finishes, then whole", async (f) => {
    const { store } = f.backend;
    const data = bytesOf(100_000);
    const sha256 = await sha256Hex(data);
    const up = await store.beginUpload(
      {
        user: "ada",
        parts: ["a.bin"],
        size: data.byteLength,
        id: { sha256 },
        overwrite: false,
        parents: false,
      },
      { offset: 0, limits: ROOMY, hashGate: _direct },
    );
    try {
      await up.write(data.subarray(0, 60_000));
      assertEquals(await store.stat("ada", ["a.bin"]), undefined);
      await up.write(data.subarray(60_000));
      assertEquals(await store.stat("ada", ["a.bin"]), undefined);
      assertEquals(await up.finish(sha256), { sha256 });
    } finally {
      await up.close();
    }
    const e = await store.stat("ada", ["a.bin"]);
    assertEquals(e?.type, "file");
    assertEquals(e?.size, data.byteLength);
    assertEquals(await _read(store, "ada", ["a.bin"]), data);
    assertEquals(await store.usage("ada"), { files: 100_000, partial: 0, reserved: 0, entries: 1 });
  });

  test("a wrong SHA-256 leaves nothing behind", async (f) => {
    const { store } = f.backend;
    const data = bytesOf(10_000);
    await rejectsWith(
      "checksum",
      () => upload(store, "ada", ["bad.bin"], data, { sha256: "0".repeat(64) }),
    );
    assertEquals(await store.stat("ada", ["bad.bin"]), undefined);
    assertEquals(await store.usage("ada"), { files: 0, partial: 0, reserved: 0, entries: 0 });
    const target = {
      user: "ada",
      parts: ["bad.bin"],
      size: data.byteLength,
      id: { sha256: "0".repeat(64) },
      overwrite: false,
      parents: false,
    };
    assertEquals(await store.uploadOffset(target, ROOMY), { offset: 0, busy: false });
  });

  test("an interrupted upload resumes from the stored offset after a restart", async (f) => {
    const data = bytesOf(200_000, 3);
    const sha256 = await sha256Hex(data);
    const target = {
      user: "ada",
      parts: ["big.bin"],
      size: data.byteLength,
      id: { tag: "t-1" },
      overwrite: false,
      parents: false,
    };
    {
      await using up = await f.backend.store.beginUpload(target, {
        offset: 0,
        limits: ROOMY,
        hashGate: _direct,
      });
      await up.write(data.subarray(0, 70_000));
      assertEquals((await f.backend.store.usage("ada")).reserved, 200_000);
    }
    assertEquals(await f.backend.store.usage("ada"), {
      files: 0,
      partial: 70_000,
      reserved: 0,
      entries: 0,
    });
    const store = (await f.reopen()).store;
    assertEquals(await store.uploadOffset(target, ROOMY), { offset: 70_000, busy: false });
    assertEquals((await store.usage("ada")).partial, 70_000);
    await rejectsWith(
      "changed",
      () => store.beginUpload(target, { offset: 90_000, limits: ROOMY, hashGate: _direct }),
    );
    {
      await using up = await store.beginUpload(target, {
        offset: 70_000,
        limits: ROOMY,
        hashGate: _direct,
      });
      assertEquals(up.offset, 70_000);
      await up.write(data.subarray(70_000));
      await up.finish(sha256);
    }
    assertEquals(await _read(store, "ada", ["big.bin"]), data);
    assertEquals(await store.usage("ada"), { files: 200_000, partial: 0, reserved: 0, entries: 1 });
  });

  test("a finished upload survives a restart", async (f) => {
    const data = bytesOf(5000, 9);
    await upload(f.backend.store, "ada", ["keep.bin"], data);
    const store = (await f.reopen()).store;
    assertEquals(await _read(store, "ada", ["keep.bin"]), data);
    assertEquals(await store.usage("ada"), { files: 5000, partial: 0, reserved: 0, entries: 1 });
  });

  test("one upload of a key runs at once", async (f) => {
    const { store } = f.backend;
    const target = {
      user: "ada",
      parts: ["x"],
      size: 10,
      id: { tag: "one" },
      overwrite: false,
      parents: false,
    };
    await using _up = await store.beginUpload(target, {
      offset: 0,
      limits: ROOMY,
      hashGate: _direct,
    });
    assertEquals((await store.uploadOffset(target, ROOMY)).busy, true);
    await rejectsWith(
      "busy",
      () => store.beginUpload(target, { offset: 0, limits: ROOMY, hashGate: _direct }),
    );
  });

  test("reads start at any offset and stop at any end", async (f) => {
    const { store } = f.backend;
    const data = bytesOf(700_000, 5);
    await upload(store, "ada", ["r.bin"], data);
    await using r = await store.open("ada", ["r.bin"]);
    assertEquals(r.entry.size, data.byteLength);
    assertEquals(await collect(r.read(300_001)), data.subarray(300_001));
    assertEquals(await collect(r.read(5, 17)), data.subarray(5, 17));
    assertEquals(await collect(r.read(data.byteLength)), new Uint8Array(0));
    assertEquals(await r.sha256(), await sha256Hex(data));
  });

  test("mkdir, list, rename, remove and rmdir", async (f) => {
    const { store } = f.backend;
    await store.mkdir("ada", ["d"], { parents: false, limits: ROOMY });
    await rejectsWith("exists", () => store.mkdir("ada", ["d"], { parents: false, limits: ROOMY }));
    await store.mkdir("ada", ["p", "q", "r"], { parents: true, limits: ROOMY });
    await rejectsWith(
      "not_found",
      () => store.mkdir("ada", ["no", "such"], { parents: false, limits: ROOMY }),
    );
    await upload(store, "ada", ["d", "f.txt"], bytesOf(10));
    const names = [];
    for await (const e of store.list("ada", ["d"])) names.push(`${e.name}:${e.type}:${e.size}`);
    assertEquals(names, ["f.txt:file:10"]);
    assertEquals(await store.rename("ada", ["d", "f.txt"], ["p"], { overwrite: false }), [
      "p",
      "f.txt",
    ]);
    assertEquals(await store.stat("ada", ["d", "f.txt"]), undefined);
    await upload(store, "ada", ["g.txt"], bytesOf(20));
    await rejectsWith(
      "exists",
      () => store.rename("ada", ["g.txt"], ["p", "f.txt"], { overwrite: false }),
    );
    await store.rename("ada", ["g.txt"], ["p", "f.txt"], { overwrite: true });
    assertEquals((await store.stat("ada", ["p", "f.txt"]))?.size, 20);
    await rejectsWith("bad_request", () => store.rmdir("ada", ["p"]));
    await rejectsWith(
      "bad_request",
      () => store.rename("ada", ["p"], ["p", "q", "inner"], { overwrite: false }),
    );
    assertEquals(await store.remove("ada", ["p", "f.txt"]), 20);
    await store.rmdir("ada", ["d"]);
    assertEquals(await store.stat("ada", ["d"]), undefined);
    await rejectsWith("not_found", () => store.remove("ada", ["d", "f.txt"]));
    assertEquals(await store.usage("ada"), { files: 0, partial: 0, reserved: 0, entries: 3 });
  });

  test("renaming an entry onto itself changes nothing", async (f) => {
    const { store } = f.backend;
    await upload(store, "ada", ["same.txt"], bytesOf(33));
    const before = await store.stat("ada", ["same.txt"]);
    assertEquals(
      await store.rename("ada", ["same.txt"], ["same.txt"], { overwrite: true }),
      ["same.txt"],
    );
    assertEquals(await store.stat("ada", ["same.txt"]), before);
    assertEquals(await store.usage("ada"), { files: 33, partial: 0, reserved: 0, entries: 1 });
  });

  test("a file is never replaced without overwrite, even when it appears during an upload", async (f) => {
    const { store } = f.backend;
    const data = bytesOf(1000, 2);
    const sha256 = await sha256Hex(data);
    await using up = await store.beginUpload(
      {
        user: "ada",
        parts: ["race"],
        size: 1000,
        id: { sha256 },
        overwrite: false,
        parents: false,
      },
      { offset: 0, limits: ROOMY, hashGate: _direct },
    );
    await up.write(data);
    const other = bytesOf(10, 4);
    await upload(store, "ada", ["race"], other);
    await rejectsWith("exists", () => up.finish(sha256));
    assertEquals(await _read(store, "ada", ["race"]), other);
    await up.close();
    const u = await store.usage("ada");
    assertEquals([u.files, u.reserved, u.entries], [10, 0, 1]);
  });

  test("an upload reserves its size: concurrent uploads cannot overrun the quota", async (f) => {
    const { store } = f.backend;
    const limits = { ...ROOMY, quotaBytes: 1000 };
    const target = (i: number) => ({
      user: "ada",
      parts: [`q${i}`],
      size: 600,
      id: { tag: `q${i}` },
      overwrite: false,
      parents: false,
    });
    await using _first = await store.beginUpload(target(1), {
      offset: 0,
      limits,
      hashGate: _direct,
    });
    await rejectsWith(
      "quota",
      () => store.beginUpload(target(2), { offset: 0, limits, hashGate: _direct }),
    );
    assertEquals((await store.usage("ada")).reserved, 600);
  });

  test("usage is exact after concurrent uploads, moves and removals", async (f) => {
    const { store } = f.backend;
    await store.mkdir("ada", ["c"], { parents: false, limits: ROOMY });
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < 12; i++) {
      jobs.push(upload(store, "ada", ["c", `f${i}`], bytesOf(1000 + i, i)));
      jobs.push(store.mkdir("ada", ["c", `d${i}`], { parents: false, limits: ROOMY }));
    }
    await Promise.all(jobs);
    const more: Promise<unknown>[] = [];
    for (let i = 0; i < 12; i++) {
      if (i % 3 === 0) more.push(store.remove("ada", ["c", `f${i}`]));
      else if (i % 3 === 1) {
        more.push(store.rename("ada", ["c", `f${i}`], ["c", `d${i}`], { overwrite: false }));
      } else more.push(upload(store, "ada", ["c", `f${i}`], bytesOf(7, i), { overwrite: true }));
    }
    await Promise.all(more);
    let bytes = 0;
    let entries = 0;
    const walk = async (parts: string[]) => {
      for await (const e of store.list("ada", parts)) {
        entries++;
        bytes += e.size;
        if (e.type === "dir") await walk([...parts, e.name]);
      }
    };
    await walk([]);
    assertEquals(entries, 1 + 12 + 8);
    assertEquals(await store.usage("ada"), { files: bytes, partial: 0, reserved: 0, entries });
  });

  test("the same content at two paths: each owner pays, removing one keeps the other", async (f) => {
    const { store } = f.backend;
    const data = bytesOf(600_000, 11);
    await upload(store, "ada", ["one.bin"], data);
    await upload(store, "ada", ["two.bin"], data);
    await upload(store, "bob", ["three.bin"], data);
    const one = await store.stat("ada", ["one.bin"]);
    const two = await store.stat("ada", ["two.bin"]);
    assertNotEquals(one?.version, two?.version);
    assertEquals(await store.usage("ada"), {
      files: 1_200_000,
      partial: 0,
      reserved: 0,
      entries: 2,
    });
    assertEquals((await store.usage("bob")).files, 600_000);
    assertEquals(await store.remove("ada", ["one.bin"]), 600_000);
    assertEquals(await _read(store, "ada", ["two.bin"]), data);
    assertEquals(await store.remove("ada", ["two.bin"]), 600_000);
    assertEquals(await _read(store, "bob", ["three.bin"]), data);
    assertEquals(await store.usage("ada"), { files: 0, partial: 0, reserved: 0, entries: 0 });
    // Other content to the same path, then the first content again: each read is its own.
    await upload(store, "bob", ["three.bin"], bytesOf(1000, 12), { overwrite: true });
    await upload(store, "ada", ["again.bin"], data);
    const reopened = (await f.reopen()).store;
    assertEquals(await _read(reopened, "ada", ["again.bin"]), data);
    assertEquals(await _read(reopened, "bob", ["three.bin"]), bytesOf(1000, 12));
  });

  test("shares resolve, repeat for the same file, and are bounded per owner", async (f) => {
    const { store, shares } = f.backend;
    const share = async (name: string, seed: number) => {
      const data = bytesOf(100 + seed, seed);
      await upload(store, "ada", [name], data, { overwrite: true });
      const e = (await store.stat("ada", [name]))!;
      return await shares.create(
        {
          owner: "ada",
          parts: [name],
          size: e.size,
          sha256: await sha256Hex(data),
          version: e.version,
        },
        2,
      );
    };
    const a = await share("a", 1);
    assert(/^[0-9a-f]{32}$/.test(a.id));
    assertEquals(await shares.resolve(a.id), a);
    const again = await shares.create(
      { owner: "ada", parts: ["a"], size: a.size, sha256: a.sha256, version: "" },
      2,
    );
    assertEquals(again.id, a.id);
    const b = await share("b", 2);
    assertNotEquals(b.id, a.id);
    await rejectsWith("quota", () => share("c", 3));
    // A record whose file was removed is forgotten first.
    await store.remove("ada", ["a"]);
    const c = await share("c", 3);
    assertEquals(await shares.resolve(a.id), undefined);
    assertEquals((await shares.resolve(c.id))?.parts, ["c"]);
    await shares.forget(b.id);
    assertEquals(await shares.resolve(b.id), undefined);
    assertEquals(await shares.resolve("f".repeat(32)), undefined);
    // Records are durable.
    const reopened = await f.reopen();
    assertEquals(await reopened.shares.resolve(c.id), c);
  });
}
