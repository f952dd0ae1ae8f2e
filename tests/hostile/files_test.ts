/**
 * Hostile file operations: path traversal strings through every path-taking
 * operation, a disk that fills up during an upload (a small tmpfs as the data
 * dir; needs root for `mount`), and the server killed with SIGKILL in the
 * middle of an upload and restarted.
 *
 * @module
 */
import { exists } from "../files/files_fixtures.ts";
import { concat } from "@std/bytes/concat";
import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import { createHash } from "node:crypto";
import { ParleyClient } from "../../client/client.ts";
import { RemoteError } from "../../protocol/errors.ts";
import { keyBytes, spawnServer } from "../helpers.ts";
import { startTarget } from "./harness.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Deterministic bytes. */
function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Uploads `data` as `path` from `offset`; resolves with the reply or the remote error. */
async function put(
  c: ParleyClient,
  path: string,
  data: Uint8Array,
  options: { offset?: number; sha256?: string } = {},
): Promise<unknown> {
  const offset = options.offset ?? 0;
  const { stream, result } = c.open("file.put", {
    path,
    size: data.byteLength,
    sha256: options.sha256 ?? sha(data),
    offset,
  });
  result.catch(() => {});
  try {
    for (let off = offset; off < data.byteLength; off += 256 * 1024) {
      await stream.write(data.subarray(off, Math.min(off + 256 * 1024, data.byteLength)));
    }
    stream.end();
  } catch {
    // the server refused mid-way; the result says why
  }
  return await result.catch((e) => e);
}

/** Downloads `path`; resolves with its bytes or the remote error. */
async function get(c: ParleyClient, path: string): Promise<Uint8Array | RemoteError> {
  const { stream, result } = c.open("file.get", { path }, { fin: true });
  result.catch(() => {});
  const parts: Uint8Array[] = [];
  try {
    for (let b = await stream.read(); b; b = await stream.read()) parts.push(b.slice());
  } catch {
    // reset by the server; the result says why
  }
  const r = await result.catch((e) => e);
  if (r instanceof RemoteError) return r;
  return concat(parts);
}

const TRAVERSALS = [
  "../escape-probe",
  "../../escape-probe",
  "../../../../../../../../tmp/escape-probe",
  "/etc/passwd",
  "/tmp/escape-probe",
  "~/../escape-probe",
  "~/../../users.json",
  "~observer/secret.txt",
  "a/../../escape-probe",
  "./../escape-probe",
  "..\\escape-probe",
  "..%2fescape-probe",
  "%2e%2e/escape-probe",
  "a\u0000b",
  "..\u2215escape-probe",
  "\uff0e\uff0e/escape-probe",
  "link/passwd",
  "link/../../escape-probe",
  ".parley-tmp/x",
  "~/.parley-tmp/x",
  "",
  "x".repeat(5000),
];

Deno.test("path traversal strings never reach outside the user's storage", async () => {
  await using target = await startTarget();
  const ada = await target.client("ada");
  const observer = await target.client("observer");
  assertEquals(
    await put(observer, "secret.txt", new TextEncoder().encode("observer's")).then((r) =>
      r instanceof Error ? r.message : "ok"
    ),
    "ok",
  );
  // A symlink planted inside ada's home that points out of the store.
  const home = join(target.dataDir, "files", "home", "ada");
  await Deno.mkdir(home, { recursive: true });
  await Deno.symlink("/etc", join(home, "link"));
  await target.baseline();
  const probe = new TextEncoder().encode("should never be stored outside");
  for (const path of TRAVERSALS) {
    const stat = await ada.call("file.stat", { path }).catch((e) => e);
    if (!(stat instanceof RemoteError)) {
      // Allowed only when it resolved inside ada's own home.
      assert(
        !/passwd|secret|users/.test(JSON.stringify(stat)),
        `file.stat ${path}: ${JSON.stringify(stat)}`,
      );
    }
    const got = await get(ada, path);
    assert(got instanceof RemoteError, `file.get ${JSON.stringify(path)} returned data`);
    const up = await put(ada, path, probe);
    if (!(up instanceof RemoteError)) {
      // Accepted only as a name inside ada's home (e.g. a literal "..%2f…" file name).
      assert(
        await exists(join(home, path)),
        `file.put ${JSON.stringify(path)}: ${JSON.stringify(up)}`,
      );
      await ada.call("file.rm", { path });
    }
    await ada.call("file.mkdir", { path }).then(
      () => ada.call("file.rmdir", { path }),
      (e) => assert(e instanceof RemoteError, String(e)),
    );
    await ada.call("file.mv", { from: "nothing-here", to: path }).catch((e) =>
      assert(e instanceof RemoteError, String(e))
    );
  }
  for (
    const outside of [
      join(target.dataDir, "..", "escape-probe"),
      join(target.dataDir, "escape-probe"),
      join(target.dataDir, "files", "escape-probe"),
      "/tmp/escape-probe",
    ]
  ) {
    assert(!(await exists(outside)), `${outside} was created`);
  }
  // ada cannot read the observer's file either.
  assert((await get(ada, "~observer/secret.txt")) instanceof RemoteError);
  await target.check("path traversal");
});

Deno.test("a disk that fills up during an upload gives a clear error and no partial file", async () => {
  const mountPoint = await Deno.makeTempDir({ prefix: "parley-full-" });
  const mount = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", "size=8m", "tmpfs", mountPoint],
    stderr: "piped",
  }).output();
  assert(
    mount.success,
    `mounting a tmpfs needs root: ${new TextDecoder().decode(mount.stderr)}`,
  );
  try {
    const dataDir = join(mountPoint, "data");
    {
      await using target = await startTarget({
        dataDir,
        config: { files: { quotaBytes: 1024 * 1024 * 1024 } },
      });
      const ada = await target.client("ada");
      const small = bytes(64 * 1024, 3);
      assertEquals(
        (await put(ada, "before.bin", small) as { size: number }).size,
        small.byteLength,
      );
      await target.baseline();
      const big = bytes(12 * 1024 * 1024, 4);
      const r = await put(ada, "big.bin", big);
      assert(
        r instanceof RemoteError,
        `an upload larger than the disk succeeded: ${JSON.stringify(r)}`,
      );
      const err = r as RemoteError;
      assertEquals(err.code, "disk_full", `a full disk should say so, not: ${err.message}`);
      const home = join(dataDir, "files", "home", "ada");
      assert(!(await exists(join(home, "big.bin"))), "a partial big.bin is visible");
      assertEquals(await get(ada, "before.bin"), small);
      await target.check("disk full");
    }
  } finally {
    await new Deno.Command("umount", { args: [mountPoint] }).output();
    await Deno.remove(mountPoint, { recursive: true });
  }
});

Deno.test("a server killed with SIGKILL mid-upload restarts cleanly and the upload resumes", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "parley-kill-" });
  try {
    const data = bytes(24 * 1024 * 1024, 9);
    const digest = sha(data);
    let key: string;
    {
      const first = await spawnServer({ dataDir });
      try {
        key = await first.addUser("ada");
        const c = await ParleyClient.connect({
          host: "127.0.0.1",
          port: first.port,
          user: "ada",
          key: keyBytes(key),
          ...first.clientOptions,
        });
        const { stream, result } = c.open("file.put", {
          path: "big.bin",
          size: data.byteLength,
          sha256: digest,
        });
        result.catch(() => {});
        // Send 12 MiB, wait until the server has some of it on disk, then kill it.
        for (let off = 0; off < 12 * 1024 * 1024; off += 256 * 1024) {
          await stream.write(data.subarray(off, off + 256 * 1024));
        }
        const tmp = join(dataDir, "files", ".parley-tmp");
        let onDisk = 0;
        for (let i = 0; i < 200 && onDisk < 1024 * 1024; i++) {
          await new Promise((r) => setTimeout(r, 25));
          for await (const e of Deno.readDir(tmp)) {
            if (e.name.endsWith(".part")) onDisk = (await Deno.stat(join(tmp, e.name))).size;
          }
        }
        assert(onDisk > 0, "the server never wrote any of the upload");
        const status = await first.stop("SIGKILL");
        assertEquals(status.signal, "SIGKILL");
        await c.close();
      } finally {
        await first.stop("SIGKILL");
      }
    }
    const home = join(dataDir, "files", "home", "ada");
    assert(!(await exists(join(home, "big.bin"))), "a partial big.bin became visible");
    await using second = await spawnServer({ dataDir });
    const c = await ParleyClient.connect({
      host: "127.0.0.1",
      port: second.port,
      user: "ada",
      key: keyBytes(key),
      ...second.clientOptions,
    });
    try {
      assert((await get(c, "big.bin")) instanceof RemoteError, "big.bin is visible after restart");
      const { offset } = await c.call("file.offset", {
        path: "big.bin",
        size: data.byteLength,
        sha256: digest,
      }) as { offset: number };
      assert(offset > 0 && offset < data.byteLength, `resume offset ${offset}`);
      const done = await put(c, "big.bin", data, { offset }) as { resumedFrom?: number };
      assertEquals(done.resumedFrom, offset, JSON.stringify(done));
      const back = await get(c, "big.bin");
      if (!(back instanceof Uint8Array)) throw back;
      assertEquals(sha(back), digest);
    } finally {
      await c.close();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
