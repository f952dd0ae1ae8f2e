/**
 * The exec audit log stays bounded whatever users send (issue 10 §2):
 * compact entries for refused runs, a per-user rate limit on logging them,
 * and rotation by size.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { join } from "@std/path";
import { RemoteError } from "../../protocol/errors.ts";
import { AuditLog } from "../../server/embedded/exec_audit_log.ts";
import { compactArgv } from "../../server/exec/audit_argv.ts";
import { collect, startExecServer } from "./exec_fixtures.ts";

async function entries(path: string): Promise<Record<string, unknown>[]> {
  const text = await Deno.readTextFile(path);
  return text.trim().split("\n").filter((l) => l).map((l) => JSON.parse(l));
}

Deno.test("a flood of refused requests with huge argv keeps the audit log small", async () => {
  const t = await startExecServer({ auditRefusedPerMinute: 20 });
  try {
    const c = await t.connect("ada");
    const big = "x".repeat(60_000); // about the most one request header can carry
    const flood = 150;
    for (let i = 0; i < flood; i++) {
      const err = await assertRejects(() => collect(c, { argv: ["rm", big, "-rf"] }), RemoteError);
      assertEquals(err.code, "forbidden");
    }
    // The server keeps serving, and real runs are still logged.
    assertEquals((await collect(c, { argv: ["echo", "ok"] })).stdout, "ok\n");
    await t.server.close(); // writes the summary of what was not logged
    const path = join(t.dataDir, "exec-audit.log");
    const size = (await Deno.stat(path)).size;
    assert(size < 32 * 1024, `audit log is ${size} bytes after ${flood * 60_000} bytes of argv`);
    const all = await entries(path);
    const refused = all.filter((e) => e.refused === "forbidden");
    assertEquals(refused.length, 20);
    for (const e of refused) {
      const argv = e.argv as string[];
      assert(new TextEncoder().encode(argv.join("")).byteLength <= 256 + 3, JSON.stringify(e));
      assertEquals(argv[0], "rm");
      assert(argv[1]!.endsWith("…"));
      assertEquals(e.argvTotal, { args: 3, bytes: 60_005 });
    }
    const summary = all.filter((e) => e.refused === "suppressed");
    assertEquals(summary.map((e) => [e.user, e.suppressed]), [["ada", flood - 20]]);
    assertEquals(all.filter((e) => e.code === 0).length, 1);
  } finally {
    await t[Symbol.asyncDispose]();
  }
});

Deno.test("the audit log rotates by size and keeps one old file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-audit-" });
  try {
    const path = join(dir, "exec-audit.log");
    const log = await AuditLog.open(path, { maxBytes: 4096 });
    for (let i = 0; i < 500; i++) {
      await log.write({
        start: new Date(0).toISOString(),
        user: "ada",
        addr: "127.0.0.1:1",
        argv: ["echo", String(i)],
        cwd: null,
        durationMs: 0,
        code: 0,
        signal: null,
      });
    }
    await log.close();
    for (const p of [path, `${path}.1`]) {
      const st = await Deno.stat(p);
      assert(st.size <= 4096, `${p}: ${st.size}`);
      assertEquals(st.mode! & 0o777, 0o600);
    }
    const n = (e: Record<string, unknown> | undefined) => Number((e?.argv as string[])[1]);
    const current = await entries(path);
    const older = await entries(`${path}.1`);
    assertEquals(n(current.at(-1)), 499);
    assertEquals(n(older.at(-1)) + 1, n(current[0])); // nothing lost at the seam
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("argv is cut on a character boundary with its real size recorded", () => {
  assertEquals(compactArgv(["ls", "-l"], 256), { argv: ["ls", "-l"] });
  const cut = compactArgv(["echo", "é".repeat(200)], 11);
  assertEquals(cut.argv, ["echo", "ééé…"]);
  assertEquals(cut.argvTotal, { args: 2, bytes: 404 });
  assertEquals(compactArgv(["a".repeat(10), "b"], 10), {
    argv: ["a".repeat(10)],
    argvTotal: { args: 2, bytes: 11 },
  });
});
