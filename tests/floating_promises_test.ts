import { assertEquals } from "@std/assert";
import { join } from "@std/path";
import { denoTypes, findFloatingPromises } from "../scripts/floating_promises.ts";

const SOURCE = `
async function write(): Promise<void> {
  await Deno.writeTextFile("/nonexistent/x", "x");
}
/** Catches everything. @neverRejects */
async function safe(): Promise<void> {
  try { await write(); } catch { /* reported elsewhere */ }
}
export function caller(): void {
  write();
  void write();
  void write().catch(() => {});
  void write().then(() => {}, () => {});
  void safe();
  // floating-ok: exercised by the test
  write();
  const kept = write();
  void kept.catch(() => {});
}
`;

Deno.test("the floating-promise check finds dropped and voided promises, not handled ones", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-fp-" });
  try {
    const file = join(dir, "sample.ts");
    await Deno.writeTextFile(file, SOURCE);
    const found = findFloatingPromises([file], await denoTypes(dir));
    assertEquals(found.map((f) => [f.line, f.text]), [
      [10, "write();"],
      [11, "void write();"],
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
