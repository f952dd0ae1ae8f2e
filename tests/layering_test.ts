/**
 * The layers stay apart (README "What is where"): `protocol/` imports
 * nothing from `server/`, `client/` or `cli/`; `server/` nothing from
 * `client/`; `cli/` (argument parsing shared by both command sets) nothing
 * from either. Feature code under `server/chat/`, `server/files/` and
 * `server/exec/` reaches stored data and processes only through the backend
 * interfaces, so it calls no `Deno.*` file-system API and no `Deno.Command`.
 * `client/` and `cli/` never load zod: they import neither it nor the
 * argument schemas (`protocol/ops/args.ts`, `protocol/ops/*_args.ts`), and
 * nothing they load at run time does either, so a one-shot command does not
 * pay for zod at start-up.
 *
 * A static scan of the source with the TypeScript parser: static and
 * dynamic imports, `export … from` and `import("…")` types all count, except
 * in the run-time walk, which follows only what Deno loads (type-only
 * imports and exports are erased).
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

/** Whether `spec`, imported by `file`, names zod or an argument-schema file. */
function _isSchemaImport(root: string, file: string, spec: string): boolean {
  if (spec === "zod" || spec.startsWith("zod/") || spec.startsWith("npm:zod")) return true;
  if (!spec.startsWith(".")) return false;
  const target = relative(root, resolve(dirname(file), spec)).split(SEPARATOR).join("/");
  return /^protocol\/ops\/(args|[a-z_]+_args)\.ts$/.test(target);
}

/** Imports of zod or of an argument-schema file from files under `root/from`. */
async function schemaImports(root: string, from: string): Promise<Finding[]> {
  const found: Finding[] = [];
  for (const file of await _sourceFiles(join(root, from))) {
    const sf = _parse(file, await Deno.readTextFile(file));
    for (const { spec, line } of _imports(sf)) {
      if (_isSchemaImport(root, file, spec)) {
        found.push({ file: relative(root, file), line, what: spec });
      }
    }
  }
  return found;
}

/** Whether every name in an import or export clause is marked `type` (Deno then erases it). */
function _allTypes(elements: ts.NodeArray<ts.ImportSpecifier | ts.ExportSpecifier>): boolean {
  return elements.length > 0 && elements.every((e) => e.isTypeOnly);
}

/** The module specifiers `sf` loads at run time: type-only imports and exports left out. */
function _runtimeImports(sf: ts.SourceFile): { spec: string; line: number }[] {
  const out: { spec: string; line: number }[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const typeOnly = clause !== undefined &&
        (clause.isTypeOnly ||
          (clause.name === undefined && clause.namedBindings !== undefined &&
            ts.isNamedImports(clause.namedBindings) && _allTypes(clause.namedBindings.elements)));
      if (!typeOnly) out.push({ spec: node.moduleSpecifier.text, line: _line(sf, node) });
    } else if (
      ts.isExportDeclaration(node) && node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      const clause = node.exportClause;
      const typeOnly = node.isTypeOnly ||
        (clause !== undefined && ts.isNamedExports(clause) && _allTypes(clause.elements));
      if (!typeOnly) out.push({ spec: node.moduleSpecifier.text, line: _line(sf, node) });
    } else if (
      ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] && ts.isStringLiteralLike(node.arguments[0])
    ) {
      out.push({ spec: node.arguments[0].text, line: _line(sf, node) });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/**
 * Files under `root/from` that load zod or an argument-schema file at run
 * time, through any chain of relative imports; `what` shows the chain.
 */
async function schemaLoads(root: string, from: string): Promise<Finding[]> {
  const parsed = new Map<string, { spec: string; line: number }[]>();
  const importsOf = async (file: string) => {
    let found = parsed.get(file);
    if (found === undefined) {
      found = _runtimeImports(_parse(file, await Deno.readTextFile(file)));
      parsed.set(file, found);
    }
    return found;
  };
  const found: Finding[] = [];
  for (const start of await _sourceFiles(join(root, from))) {
    const seen = new Set([start]);
    const queue: { file: string; chain: string[]; line: number }[] = [
      { file: start, chain: [], line: 0 },
    ];
    search: for (let item = queue.shift(); item; item = queue.shift()) {
      for (const { spec, line } of await importsOf(item.file)) {
        const at = item.chain.length === 0 ? line : item.line;
        if (_isSchemaImport(root, item.file, spec)) {
          const chain = [...item.chain, relative(root, item.file), spec];
          found.push({ file: relative(root, start), line: at, what: chain.join(" -> ") });
          break search;
        }
        if (!spec.startsWith(".")) continue;
        const next = resolve(dirname(item.file), spec);
        if (seen.has(next)) continue;
        seen.add(next);
        queue.push({ file: next, chain: [...item.chain, relative(root, item.file)], line: at });
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

Deno.test("the schema scan finds zod and argument schemas a client imports or loads", async () => {
  const root = await Deno.makeTempDir({ prefix: "parley-layers-" });
  const write = async (path: string, lines: string[]) => {
    await Deno.mkdir(join(root, dirname(path)), { recursive: true });
    await Deno.writeTextFile(join(root, path), lines.join("\n") + "\n");
  };
  try {
    await write("protocol/ops/chat.ts", [
      `import type { z } from "zod";`,
      `import type { CHAT_ARGS } from "./chat_args.ts";`,
      `export const CHAT_SEND = "chat.send";`,
    ]);
    await write("protocol/ops/chat_args.ts", [`import { z } from "zod";`, `export const A = z;`]);
    await write("protocol/ops/files.ts", [
      `import { type FILE_ARGS } from "./files_args.ts";`,
      `export { type FILE_ARGS } from "./files_args.ts";`,
      `export const FILE_PUT = "file.put";`,
    ]);
    await write("protocol/ops/files_args.ts", [`export * from "zod";`]);
    await write("protocol/ops/exec.ts", [
      `import { EXEC_ARGS } from "./exec_args.ts";`,
      `export const EXEC_RUN = "exec.run";`,
    ]);
    await write("protocol/ops/exec_args.ts", [`import { z } from "zod";`]);
    await write("protocol/ops/args.ts", [`export * from "./chat_args.ts";`]);
    await write("protocol/ops/my_args_notes.ts", [`export const n = 1;`]);
    await write("client/a.ts", [
      `import { CHAT_SEND } from "../protocol/ops/chat.ts";`,
      `import { FILE_PUT } from "../protocol/ops/files.ts";`,
      `import type { z } from "zod";`,
      `import { n } from "../protocol/ops/my_args_notes.ts";`,
      `const m = await import("../protocol/ops/args.ts");`,
    ]);
    await write("client/b.ts", [`import { CHAT_SEND } from "../protocol/ops/chat.ts";`]);
    await write("client/c.ts", [
      `import { x } from "./d.ts";`,
      `export { EXEC_RUN } from "../protocol/ops/exec.ts";`,
    ]);
    await write("client/d.ts", [`export const x = 1;`]);
    assertEquals(
      (await schemaImports(root, "client")).map((f) => [f.file, f.line, f.what]),
      [["client/a.ts", 3, "zod"], ["client/a.ts", 5, "../protocol/ops/args.ts"]],
    );
    assertEquals(
      (await schemaLoads(root, "client")).map((f) => [f.file, f.line, f.what]),
      [
        ["client/a.ts", 5, "client/a.ts -> ../protocol/ops/args.ts"],
        ["client/c.ts", 2, "client/c.ts -> protocol/ops/exec.ts -> ./exec_args.ts"],
      ],
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

Deno.test("client/ and cli/ import neither zod nor the argument schemas", async () => {
  const found: Finding[] = [];
  for (const dir of ["client", "cli"]) found.push(...await schemaImports(ROOT, dir));
  assertEquals(found, [], _show(found));
});

Deno.test("nothing client/ or cli/ loads at run time loads zod or the argument schemas", async () => {
  const found: Finding[] = [];
  for (const dir of ["client", "cli"]) found.push(...await schemaLoads(ROOT, dir));
  assertEquals(found, [], _show(found));
});
