import { assertEquals } from "@std/assert";
import { quoteWord, scanWords, splitWords, textAfter } from "../../client/repl_words.ts";

const LINES = [
  `put "my file.txt" there`,
  `put 'it''s' a\\ b`,
  `get "a \\"quoted\\" name" 'back\\slash'`,
  `msg   ada    spaced   out  `,
  `x "in \\$dollar \\\\ and \\n" y`,
  `mix"ed quo"tes 'and'"more"`,
  `#room @user -- --flag=1`,
  `é ü "ß x" ' ' ""`,
];

Deno.test("scanWords reads a line as splitWords (npm shlex) does", () => {
  for (const line of LINES) {
    assertEquals(scanWords(line).words.map((w) => w.value), splitWords(line), line);
    assertEquals(scanWords(line).open, false, line);
  }
  assertEquals(scanWords(`put "half open`).open, true);
  assertEquals(scanWords(`put "half open`).words.map((w) => w.value), ["put", "half open"]);
});

Deno.test("quoteWord writes a word that splitWords reads back unchanged", () => {
  for (const w of ["plain", "my file.txt", "it's", `say "hi"`, "back\\slash", "a$b", "", "é ü"]) {
    assertEquals(splitWords(`cmd ${quoteWord(w)} end`), ["cmd", w, "end"], w);
  }
});

Deno.test("textAfter keeps free text as typed", () => {
  assertEquals(textAfter(`ada it's late, isn't it`, 1), `it's late, isn't it`);
  assertEquals(textAfter(`"ada b"   hi`, 1), "hi");
  assertEquals(textAfter(`ada`, 1), "");
});
