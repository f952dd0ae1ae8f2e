/**
 * The layers stay apart (README "What is where"): `protocol/` imports
 * nothing from `server/`, `client/` or `cli/`; `server/` nothing from
 * `client/`; `cli/` (argument parsing shared by both command sets) nothing
 * from either. Feature code under `server/chat/`, `server/files/` and
 * `server/exec/` reaches stored data and processes only through the backend
 * interfaces, so it calls no `Deno.*` file-system API and no `Deno.Command`.
 *
 * A static scan of the source with the TypeScript parser: static and
 * dynamic imports, `export … from` and `import("…")` types all count.
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import { dirname, join, relative, resolve, SEPARATOR } from "@std/path";
import ts from "typescript";
import { ROOT } from "./helpers.ts";

/** One place a rule is broken. */
interface Finding {
  file: string;
  line: number;
  what: string;
}

/** `Deno.*` members that touch the file system or start processes. */
const _FS_AND_PROCESS = new Set(
  [
    "open",
    "create",
    "readFile",
    "readTextFile",
    "writeFile",
    "writeTextFile",
    "mkdir",
    "remove",
    "rename",
    "stat",
    "lstat",
    "readDir",
    "makeTempDir",
    "makeTempFile",
    "truncate",
    "chmod",
    "chown",
    "copyFile",
    "link",
    "symlink",
    "realPath",
    "readLink",
    "utime",
    "umask",
    "chdir",
  ].flatMap((n) => [n, `${n}Sync`]).concat(["watchFs", "Command"]),
);

async function _sourceFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for await (const e of Deno.readDir(d)) {
      const p = join(d, e.name);
      if (e.isDirectory) await walk(p);
      else if (e.isFile && e.name.endsWith(".ts")) files.push(p);
    }
  };
  await walk(dir);
  return files.sort();
}

function _parse(file: string, text: string): ts.SourceFile {
  return ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
}

function _line(sf: ts.SourceFile, node: ts.Node): number {
  return sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
}

/** Every module specifier `file` names, with its line. */
function _imports(sf: ts.SourceFile): { spec: string; line: number }[] {
  const out: { spec: string; line: number }[] = [];
  const visit = (node: ts.Node): void => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      out.push({ spec: node.moduleSpecifier.text, line: _line(sf, node) });
    } else if (
      ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] && ts.isStringLiteralLike(node.arguments[0])
    ) {
      out.push({ spec: node.arguments[0].text, line: _line(sf, node) });
    } else if (
      ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) &&
      ts.isStringLiteral(node.argument.literal)
    ) {
      out.push({ spec: node.argument.literal.text, line: _line(sf, node) });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** `Deno.<name>` uses of file-system and process APIs. */
function _denoUses(sf: ts.SourceFile): { name: string; line: number }[] {
  const out: { name: string; line: number }[] = [];
  const visit = (node: ts.Node): void => {
    if (
      ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression) &&
      node.expression.text === "Deno" && _FS_AND_PROCESS.has(node.name.text)
    ) {
      out.push({ name: node.name.text, line: _line(sf, node) });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/**
 * Imports from files under `root/from` that resolve into any of the
 * `root/forbidden` folders.
 */
async function forbiddenImports(
  root: string,
  from: string,
  forbidden: string[],
): Promise<Finding[]> {
  const found: Finding[] = [];
  const banned = forbidden.map((f) => join(root, f) + SEPARATOR);
  for (const file of await _sourceFiles(join(root, from))) {
    const sf = _parse(file, await Deno.readTextFile(file));
    for (const { spec, line } of _imports(sf)) {
      if (!spec.startsWith(".")) continue; // import-map names and URLs are third-party code
      const target = resolve(dirname(file), spec);
      if (banned.some((b) => target.startsWith(b))) {
        found.push({ file: relative(root, file), line, what: spec });
      }
    }
  }
  return found;
}

/** File-system and process calls in files under `root/dir`. */
async function denoFsCalls(root: string, dir: string): Promise<Finding[]> {
  const found: Finding[] = [];
  for (const file of await _sourceFiles(join(root, dir))) {
    const sf = _parse(file, await Deno.readTextFile(file));
    for (const { name, line } of _denoUses(sf)) {
      found.push({ file: relative(root, file), line, what: `Deno.${name}` });
    }
  }
  return found;
}

function _show(found: Finding[]): string {
  return found.map((f) => `${f.file}:${f.line} ${f.what}`).join("\n");
}

Deno.test("the layering scan finds forbidden imports and Deno file calls in a sample tree", async () => {
  const root = await Deno.makeTempDir({ prefix: "parley-layers-" });
  try {
    await Deno.mkdir(join(root, "server", "chat"), { recursive: true });
    await Deno.mkdir(join(root, "client"));
    await Deno.writeTextFile(join(root, "client", "x.ts"), "export const x = 1;\n");
    await Deno.writeTextFile(
      join(root, "server", "chat", "a.ts"),
      [
        `import { x } from "../../client/x.ts";`,
        `import type { Y } from "../../clientele/y.ts";`,
        `export type { Z } from "../../client/z.ts";`,
        `const m = await import("../../client/x.ts");`,
        `type T = import("../../client/x.ts").T;`,
        `import { join } from "@std/path";`,
        `// Deno.readTextFile("in a comment") is fine`,
        `const s = "Deno.remove(x) in a string is fine";`,
        `const f: Deno.FsFile | undefined = undefined;`,
        `await Deno.readTextFile("/etc/hostname");`,
        `new Deno.Command("true");`,
        `Deno.removeSync("x");`,
      ].join("\n"),
    );
    assertEquals(
      (await forbiddenImports(root, "server", ["client"])).map((f) => [f.line, f.what]),
      [
        [1, "../../client/x.ts"],
        [3, "../../client/z.ts"],
        [4, "../../client/x.ts"],
        [5, "../../client/x.ts"],
      ],
    );
    assertEquals(
      (await denoFsCalls(root, join("server", "chat"))).map((f) => [f.line, f.what]),
      [[10, "Deno.readTextFile"], [11, "Deno.Command"], [12, "Deno.removeSync"]],
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("protocol/ imports nothing from server/, client/ or cli/", async () => {
  const found = await forbiddenImports(ROOT, "protocol", ["server", "client", "cli"]);
  assertEquals(found, [], _show(found));
});

Deno.test("server/ imports nothing from client/", async () => {
  const found = await forbiddenImports(ROOT, "server", ["client"]);
  assertEquals(found, [], _show(found));
});

Deno.test("cli/ imports nothing from server/ or client/", async () => {
  const found = await forbiddenImports(ROOT, "cli", ["server", "client"]);
  assertEquals(found, [], _show(found));
});

Deno.test("features call no Deno file-system or process API (the backend does)", async () => {
  const found: Finding[] = [];
  for (const dir of ["chat", "files", "exec"]) {
    found.push(...await denoFsCalls(ROOT, join("server", dir)));
  }
  assertEquals(found, [], _show(found));
});
