/**
 * A type-aware lint that `deno lint` lacks: finds promises that nobody
 * awaits or handles in the program's own code (`main.ts`, `protocol/`,
 * `server/`, `client/`, `cli/`). In Deno an unhandled rejection ends the process, so
 * a forgotten promise on an I/O path (a disk-full write, a closed socket) is a
 * crash waiting for its fault.
 *
 * Reported:
 * - an expression statement whose value is a promise (`store.append(x);`);
 *   storing one (`this.#done = run()`) is fine, it is awaited elsewhere;
 * - `void p` where `p` is a promise that does not end in `.catch(handler)` or
 *   `.then(onOk, onErr)` — `void` says "not waited for", not "cannot fail".
 *
 * A function that catches everything itself says so with the JSDoc tag
 * `@neverRejects`; calls to it are not reported. A line can opt out with a comment `// floating-ok: <reason>` on it or on the
 * line above. Run with `deno task check-promises`; exits 1 on findings.
 *
 * @module
 */
import ts from "typescript";
import { fromFileUrl, join, relative } from "@std/path";

const ROOT = fromFileUrl(new URL("..", import.meta.url));
const DIRS = ["protocol", "server", "client", "cli"];

/** One finding. */
export interface Finding {
  file: string;
  line: number;
  text: string;
  why: string;
}

async function _sourceFiles(): Promise<string[]> {
  const files = [join(ROOT, "main.ts")];
  const walk = async (dir: string): Promise<void> => {
    for await (const e of Deno.readDir(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory) await walk(p);
      else if (e.isFile && e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")) files.push(p);
    }
  };
  for (const d of DIRS) await walk(join(ROOT, d));
  return files.sort();
}

/** Deno's own declarations, with the `lib` references tsc does not know removed. */
export async function denoTypes(dir: string): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), { args: ["types"], stdout: "piped" })
    .output();
  if (!out.success) throw new Error("`deno types` failed");
  const text = new TextDecoder().decode(out.stdout)
    .split("\n")
    .filter((l) => !/^\/\/\/ <reference lib="deno\./.test(l))
    .join("\n");
  const path = join(dir, "deno.d.ts");
  await Deno.writeTextFile(path, text);
  return path;
}

function _isPromise(checker: ts.TypeChecker, node: ts.Node): boolean {
  const type = checker.getTypeAtLocation(node);
  const parts = type.isUnion() ? type.types : [type];
  return parts.some((t) => {
    if (t.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) return false;
    const then = t.getProperty("then");
    if (!then) return false;
    const thenType = checker.getTypeOfSymbolAtLocation(then, node);
    return thenType.getCallSignatures().length > 0;
  });
}

/** Whether the called function documents `@neverRejects` (it catches everything itself). */
function _neverRejects(checker: ts.TypeChecker, call: ts.CallExpression): boolean {
  const decl = checker.getResolvedSignature(call)?.getDeclaration();
  return decl !== undefined && ts.getJSDocTags(decl).some((t) => t.tagName.text === "neverRejects");
}

function _handled(checker: ts.TypeChecker, expr: ts.Expression): boolean {
  let e = expr;
  while (ts.isParenthesizedExpression(e)) e = e.expression;
  if (!ts.isCallExpression(e)) return false;
  if (_neverRejects(checker, e)) return true;
  if (!ts.isPropertyAccessExpression(e.expression)) return false;
  const name = e.expression.name.text;
  if (name === "catch") return e.arguments.length >= 1;
  if (name === "then") return e.arguments.length >= 2;
  if (name === "finally") return _handled(checker, e.expression.expression);
  return false;
}

/** Storing a promise (to await it later) is not dropping it. */
function _isAssignment(e: ts.Expression): boolean {
  return ts.isBinaryExpression(e) && e.operatorToken.kind >= ts.SyntaxKind.FirstAssignment &&
    e.operatorToken.kind <= ts.SyntaxKind.LastAssignment;
}

function _optedOut(sf: ts.SourceFile, line: number): boolean {
  const lines = sf.text.split("\n");
  return [line, line - 1].some((i) => i >= 0 && (lines[i] ?? "").includes("floating-ok:"));
}

/** Lints `files`; returns every finding. */
export function findFloatingPromises(files: string[], denoTypes: string): Finding[] {
  const program = ts.createProgram([denoTypes, ...files], {
    noEmit: true,
    strict: true,
    target: ts.ScriptTarget.ESNext,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    allowImportingTsExtensions: true,
    noLib: false,
    lib: ["lib.esnext.d.ts"],
    types: [],
    skipLibCheck: true,
  });
  const checker = program.getTypeChecker();
  const findings: Finding[] = [];
  for (const file of files) {
    const sf = program.getSourceFile(file);
    if (!sf) continue;
    const report = (node: ts.Node, why: string): void => {
      const { line } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
      if (_optedOut(sf, line)) return;
      findings.push({
        file: relative(ROOT, file),
        line: line + 1,
        text: node.getText(sf).split("\n")[0]!.slice(0, 100),
        why,
      });
    };
    const visit = (node: ts.Node): void => {
      if (ts.isExpressionStatement(node)) {
        const e = node.expression;
        if (ts.isVoidExpression(e)) {
          if (_isPromise(checker, e.expression) && !_handled(checker, e.expression)) {
            report(node, "`void` on a promise whose rejection nobody handles");
          }
        } else if (
          !ts.isAwaitExpression(e) && !_isAssignment(e) && _isPromise(checker, e) &&
          !_handled(checker, e)
        ) {
          report(node, "promise neither awaited nor handled");
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return findings;
}

if (import.meta.main) {
  const tmp = await Deno.makeTempDir({ prefix: "parley-lint-" });
  try {
    const findings = findFloatingPromises(await _sourceFiles(), await denoTypes(tmp));
    for (const f of findings) console.log(`${f.file}:${f.line}: ${f.why}: ${f.text}`);
    if (findings.length > 0) {
      console.log(
        `${findings.length} floating promise(s). Await them, end them in .catch(handler), ` +
          "or mark a deliberate one with `// floating-ok: <reason>`.",
      );
      Deno.exit(1);
    }
    console.log("no floating promises");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}
