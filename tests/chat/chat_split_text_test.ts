import { assert, assertEquals } from "@std/assert";
import { splitText } from "../../client/chat/chat_client.ts";

const bytes = (s: string) => new TextEncoder().encode(s).byteLength;

Deno.test("splitText cuts a long text on code points into pieces under the limit that join back", () => {
  const cases = [
    "a".repeat(5000),
    "é".repeat(2500),
    "€".repeat(2000), // three bytes each
    "😀".repeat(1500), // four bytes, two UTF-16 units each
    ("word ".repeat(900) + "\n").repeat(2),
    "x".repeat(4095) + "😀" + "y".repeat(10),
  ];
  for (const text of cases) {
    const parts = splitText(text, 4096);
    assert(parts.length >= 2, `${bytes(text)} bytes split`);
    for (const p of parts) {
      assert(bytes(p) <= 4096, `a piece of ${bytes(p)} bytes`);
      assert(p.trim() !== "", "no empty piece");
      // no half of a surrogate pair at either end
      assert(!/^[\udc00-\udfff]|[\ud800-\udbff]$/.test(p), "cut inside a character");
    }
    // joined, they are the text (a piece of only white space at the end is not sent)
    assertEquals(parts.join("").replace(/\s+$/, ""), text.replace(/\s+$/, ""));
  }
});

Deno.test("splitText leaves a text that fits as one piece and prefers to cut at a space", () => {
  assertEquals(splitText("short", 4096), ["short"]);
  assertEquals(splitText("é".repeat(2048), 4096), ["é".repeat(2048)]);
  const parts = splitText("aaaa bbbb cccc", 10);
  assertEquals(parts, ["aaaa bbbb ", "cccc"]);
});
