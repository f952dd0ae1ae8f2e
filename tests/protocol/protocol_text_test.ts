/**
 * The units of PROTOCOL.md §1 — characters are code points, sizes are UTF-8
 * bytes — and the repeated-key check of §2, against the reference values:
 * `TextEncoder` for bytes, `Array.from` for code points, and hand-written
 * JSON for keys.
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import {
  codePointLength,
  fitsCodePoints,
  fitsUtf8,
  truncateCodePoints,
  utf8Length,
} from "../../protocol/text.ts";
import { duplicateKey, parseHeader } from "../../protocol/frame_codec.ts";
import { ProtocolError } from "../../protocol/errors.ts";

const SAMPLES = [
  "",
  "ascii",
  "\u00e9t\u00e9",
  "\u{1F600}\u{1F600}x",
  "\u4e2d\u6587",
  "a\ud800b", // a lone high surrogate
  "\udc00", // a lone low surrogate
  "\ud83d", // a high surrogate at the end
  "mixed \u00e9 \u{1F680} \u4e2d \ud800",
];

Deno.test("code points and UTF-8 bytes match Array.from and TextEncoder", () => {
  const enc = new TextEncoder();
  for (const s of SAMPLES) {
    assertEquals(codePointLength(s), Array.from(s).length, JSON.stringify(s));
    assertEquals(utf8Length(s), enc.encode(s).byteLength, JSON.stringify(s));
    for (let max = 0; max <= s.length * 4; max++) {
      assertEquals(
        fitsCodePoints(s, max),
        Array.from(s).length <= max,
        `${JSON.stringify(s)} ${max}`,
      );
      assertEquals(
        fitsUtf8(s, max),
        enc.encode(s).byteLength <= max,
        `${JSON.stringify(s)} ${max}`,
      );
    }
  }
});

Deno.test("truncating to n code points never splits a surrogate pair", () => {
  for (const s of SAMPLES) {
    const points = Array.from(s);
    for (let n = 0; n <= points.length + 1; n++) {
      assertEquals(
        truncateCodePoints(s, n),
        points.slice(0, n).join(""),
        `${JSON.stringify(s)} ${n}`,
      );
    }
  }
});

const _REPEATS: [string, string | undefined][] = [
  ['{"a":1,"b":2}', undefined],
  ['{"a":1,"a":2}', "a"],
  ['{"a":1,"\\u0061":2}', "a"],
  ['{"a":{"a":1},"b":[{"a":1},{"a":2}]}', undefined],
  ['{"x":[{"k":1,"k":2}]}', "k"],
  ['{"s":"\\"a\\":1,\\"a\\":2","a":"{\\"a\\":1}"}', undefined],
  ['{"q\\\\":1,"q\\\\":2}', "q\\"],
  ['{"":1,"":2}', ""],
  ['{"a":[],"b":{},"c":[[],[{}]],"a ":1}', undefined],
  ['{"t":"req","args":{"t":1},"t":"x"}', "t"],
  ['{"t":"ev","data":{"__proto__":1,"__proto__":2}}', "__proto__"],
  ['{"t":"ev","data":{"a":{"b":[1,{"c":1,"d":{"c":2}}]},"e":"\\\\"}}', undefined],
  ['{"t":"ev","data":{"a":{"b":[1,{"c":1,"d":{"c":2,"c":3}}]}}}', "c"],
];

Deno.test("a repeated key is found in any object, after unescaping, and only there", () => {
  for (const [text, dup] of _REPEATS) {
    JSON.parse(text); // each case is valid JSON
    assertEquals(duplicateKey(text), dup, text);
  }
});

Deno.test("parseHeader refuses a repeated key with bad_header", () => {
  const bytes = new TextEncoder().encode('{"t":"ping","id":1,"id":2}');
  let code: string | undefined;
  try {
    parseHeader(bytes, 0);
  } catch (e) {
    if (e instanceof ProtocolError) code = e.code;
  }
  assertEquals(code, "bad_header");
});

Deno.test("parseHeader refuses exactly the headers that repeat a key, at any depth", () => {
  const deep = (inner: string) => '{"k":'.repeat(5000) + inner + "}".repeat(5000);
  const cases: [string, string | undefined][] = [
    ..._REPEATS,
    [`{"t":"ev","data":${deep('{"x":1,"y":[2]}')}}`, undefined],
    [`{"t":"ev","data":${deep('{"x":1,"x":2}')}}`, "x"],
  ];
  for (const [json, dup] of cases) {
    const text = json.startsWith('{"t":') ? json : `{"t":"ev","data":${json}}`;
    let error: ProtocolError | undefined;
    try {
      parseHeader(new TextEncoder().encode(text), 0);
    } catch (e) {
      if (e instanceof ProtocolError) error = e;
      else throw e;
    }
    assertEquals(error?.code, dup === undefined ? undefined : "bad_header", text);
    if (dup !== undefined) assertEquals(error?.message.includes(JSON.stringify(dup)), true, text);
  }
});
