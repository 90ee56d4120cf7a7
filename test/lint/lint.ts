// The project's lint (`npm run lint`): syntactic rules the compiler cannot express, checked with the TypeScript
// compiler API over every source file under src/.
//
// Rules:
// - raft-purity: src/raft/ is a pure, deterministic state machine (STYLE.md §1). Its files import nothing but
//   other files of src/raft/ (no Node builtin, no package, no relative path leaving the folder, no dynamic
//   import) and use no time, randomness, scheduling or environment: no setTimeout/setInterval/setImmediate (and
//   their clear*), queueMicrotask, Date, Math.random, process, performance, require, globalThis, Buffer, crypto,
//   fetch, WeakRef, FinalizationRegistry, import.meta; no async function, no await, no Promise.
// - no-explicit-any: no `any` type anywhere in src/ (STYLE.md §8); use `unknown` or a precise type.
// - no-console: no `console.` in src/ outside src/cli/; members log through pino, the CLI may print.
// - layering: dependencies point down DESIGN.md's list: cp/ and ap/ never import each other; replica/ never
//   imports cp/, ap/, naming/, api/, health/ or cli/. (raft/ importing anything of src/ is reported by raft-purity,
//   which forbids every import leaving src/raft/, so it is not reported twice.)
//
// Each rule is a function of one parsed file and its repo-relative path, so tests feed it in-memory sources.
// Usage: `node --import tsx test/lint/lint.ts [ROOT]` (ROOT defaults to this repository; its src/ is linted).
// Output: one line per finding `path:line:col rule message`, then a summary line; exit 1 on any finding.

import ts from 'typescript';
import { builtinModules } from 'node:module';
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** RuleName names one lint rule; it is printed in every finding. */
export type RuleName = 'raft-purity' | 'no-explicit-any' | 'no-console' | 'layering';

/** Finding is one violation: where it is (1-based line and column), which rule, and what is wrong. */
export interface Finding {
  readonly path: string;
  readonly line: number;
  readonly column: number;
  readonly rule: RuleName;
  readonly message: string;
}

/** Rule checks one parsed file, whose repo-relative POSIX path is `filePath`, and returns its findings. */
export type Rule = (sourceFile: ts.SourceFile, filePath: string) => Finding[];

const raftDir = 'src/raft/';

/** bannedRaftGlobals are the identifiers src/raft/ must not use, each with why. */
export const bannedRaftGlobals: ReadonlyMap<string, string> = new Map([
  ['setTimeout', 'timers belong to the driver; the core counts ticks'],
  ['setInterval', 'timers belong to the driver; the core counts ticks'],
  ['setImmediate', 'scheduling belongs to the driver'],
  ['clearTimeout', 'timers belong to the driver; the core counts ticks'],
  ['clearInterval', 'timers belong to the driver; the core counts ticks'],
  ['clearImmediate', 'scheduling belongs to the driver'],
  ['queueMicrotask', 'scheduling belongs to the driver'],
  ['Date', 'wall-clock time breaks determinism; the core counts ticks'],
  ['performance', 'wall-clock time breaks determinism; the core counts ticks'],
  ['process', 'the environment belongs to the driver'],
  ['require', 'the core imports only src/raft/ modules'],
  ['globalThis', 'reaching globals bypasses these rules'],
  ['Buffer', 'Buffer is Node; the core uses Uint8Array'],
  ['crypto', 'randomness comes from the seeded PRNG in the config'],
  ['fetch', 'IO belongs to the driver'],
  ['Promise', 'the core is synchronous'],
  ['WeakRef', 'garbage-collector timing breaks determinism'],
  ['FinalizationRegistry', 'garbage-collector timing breaks determinism'],
]);

/** parseSource parses TypeScript text as the file at `filePath`, with parent pointers set. */
export function parseSource(filePath: string, text: string): ts.SourceFile {
  return ts.createSourceFile(filePath, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
}

function finding(sourceFile: ts.SourceFile, filePath: string, node: ts.Node, rule: RuleName, message: string): Finding {
  const { line, character } = sourceFile.getLineAndCharacterOfPosition(node.getStart(sourceFile));
  return { path: filePath, line: line + 1, column: character + 1, rule, message };
}

function visit(node: ts.Node, callback: (node: ts.Node) => void): void {
  callback(node);
  ts.forEachChild(node, (child) => visit(child, callback));
}

/** ModuleReference is one module a file refers to: a string specifier and the node that names it. */
interface ModuleReference {
  readonly specifier: string | null;
  readonly node: ts.Node;
  readonly kind: 'static' | 'dynamic';
}

/** moduleReferences lists every import, re-export, import type, `import x = require()`, `require()` and `import()`. */
function moduleReferences(sourceFile: ts.SourceFile): ModuleReference[] {
  const references: ModuleReference[] = [];
  const literal = (node: ts.Node | undefined): string | null =>
    node !== undefined && ts.isStringLiteralLike(node) ? node.text : null;
  visit(sourceFile, (node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier !== undefined) {
      references.push({ specifier: literal(node.moduleSpecifier), node: node.moduleSpecifier, kind: 'static' });
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      const expression = node.moduleReference.expression;
      references.push({ specifier: literal(expression), node: expression, kind: 'static' });
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      references.push({ specifier: literal(node.argument.literal), node: node.argument, kind: 'static' });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      references.push({ specifier: literal(node.arguments[0]), node, kind: 'dynamic' });
    } else if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'require') {
      references.push({ specifier: literal(node.arguments[0]), node, kind: 'static' });
    }
  });
  return references;
}

/** resolveRelative resolves a relative specifier against the importing file; null for a bare specifier. */
function resolveRelative(filePath: string, specifier: string): string | null {
  if (!specifier.startsWith('./') && !specifier.startsWith('../') && specifier !== '.' && specifier !== '..') return null;
  return path.posix.normalize(path.posix.join(path.posix.dirname(filePath), specifier));
}

function isNodeBuiltin(specifier: string): boolean {
  return specifier.startsWith('node:') || builtinModules.includes(specifier.split('/')[0] ?? specifier);
}

function raftImportFindings(sourceFile: ts.SourceFile, filePath: string): Finding[] {
  const findings: Finding[] = [];
  for (const reference of moduleReferences(sourceFile)) {
    const report = (message: string): void => {
      findings.push(finding(sourceFile, filePath, reference.node, 'raft-purity', message));
    };
    if (reference.kind === 'dynamic') {
      report('src/raft must not use dynamic import()');
    } else if (reference.specifier === null) {
      report('src/raft must import only string-literal paths inside src/raft');
    } else if (isNodeBuiltin(reference.specifier)) {
      report(`src/raft must not import Node builtin '${reference.specifier}'`);
    } else {
      const resolved = resolveRelative(filePath, reference.specifier);
      if (resolved === null) report(`src/raft must not import package '${reference.specifier}'`);
      else if (!resolved.startsWith(raftDir)) report(`src/raft must not import '${reference.specifier}' (outside src/raft)`);
    }
  }
  return findings;
}

/** isPropertyNamePosition tells whether an identifier names a property or member rather than referring to a binding. */
function isPropertyNamePosition(node: ts.Identifier): boolean {
  const parent = node.parent;
  if (ts.isPropertyAccessExpression(parent) || ts.isQualifiedName(parent)) {
    return (ts.isPropertyAccessExpression(parent) ? parent.name : parent.right) === node;
  }
  if (ts.isBindingElement(parent) || ts.isImportSpecifier(parent) || ts.isExportSpecifier(parent)) {
    return parent.propertyName === node;
  }
  if (ts.isLabeledStatement(parent) || ts.isBreakOrContinueStatement(parent)) return parent.label === node;
  const named =
    ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent) || ts.isPropertySignature(parent) ||
    ts.isMethodDeclaration(parent) || ts.isMethodSignature(parent) || ts.isGetAccessorDeclaration(parent) ||
    ts.isSetAccessorDeclaration(parent) || ts.isEnumMember(parent);
  return named && parent.name === node;
}

function isMathRandom(node: ts.Node): boolean {
  const isMath = (expression: ts.Expression): boolean => ts.isIdentifier(expression) && expression.text === 'Math';
  if (ts.isPropertyAccessExpression(node)) return isMath(node.expression) && node.name.text === 'random';
  if (ts.isElementAccessExpression(node)) {
    return isMath(node.expression) && ts.isStringLiteralLike(node.argumentExpression) && node.argumentExpression.text === 'random';
  }
  if (ts.isVariableDeclaration(node) && node.initializer !== undefined && ts.isObjectBindingPattern(node.name)) {
    return isMath(node.initializer) && node.name.elements.some((element) => {
      const key = element.propertyName ?? element.name;
      return ts.isIdentifier(key) && key.text === 'random';
    });
  }
  return false;
}

function hasAsyncModifier(node: ts.Node): boolean {
  return ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some((m) => m.kind === ts.SyntaxKind.AsyncKeyword);
}

/** raftNodeProblem says what is impure about one node of a src/raft file, or null. */
function raftNodeProblem(node: ts.Node): string | null {
  if (ts.isIdentifier(node) && !isPropertyNamePosition(node)) {
    const reason = bannedRaftGlobals.get(node.text);
    return reason === undefined ? null : `src/raft must not use '${node.text}': ${reason}`;
  }
  if (isMathRandom(node)) return "src/raft must not use 'Math.random': randomness comes from the seeded PRNG in the config";
  if (ts.isAwaitExpression(node)) return "src/raft must not use 'await': the core is synchronous";
  if (ts.isForOfStatement(node) && node.awaitModifier !== undefined) return "src/raft must not use 'for await': the core is synchronous";
  if (hasAsyncModifier(node)) return 'src/raft must not declare async functions: the core is synchronous';
  if (ts.isMetaProperty(node) && node.keywordToken === ts.SyntaxKind.ImportKeyword) {
    return "src/raft must not use 'import.meta': the environment belongs to the driver";
  }
  return null;
}

/** checkRaftPurity is the raft-purity rule: src/raft imports only itself and uses no time, randomness, IO or async. */
export function checkRaftPurity(sourceFile: ts.SourceFile, filePath: string): Finding[] {
  if (!filePath.startsWith(raftDir)) return [];
  const findings = raftImportFindings(sourceFile, filePath);
  visit(sourceFile, (node) => {
    const problem = raftNodeProblem(node);
    if (problem !== null) findings.push(finding(sourceFile, filePath, node, 'raft-purity', problem));
  });
  return findings;
}

/** checkNoExplicitAny is the no-explicit-any rule: no `any` keyword in a type anywhere under src/. */
export function checkNoExplicitAny(sourceFile: ts.SourceFile, filePath: string): Finding[] {
  if (!filePath.startsWith('src/')) return [];
  const findings: Finding[] = [];
  visit(sourceFile, (node) => {
    if (node.kind === ts.SyntaxKind.AnyKeyword) {
      findings.push(finding(sourceFile, filePath, node, 'no-explicit-any', "explicit 'any' type; use 'unknown' or a precise type"));
    }
  });
  return findings;
}

/** checkNoConsole is the no-console rule: no `console.` under src/ except src/cli/ (members log through pino). */
export function checkNoConsole(sourceFile: ts.SourceFile, filePath: string): Finding[] {
  if (!filePath.startsWith('src/') || filePath.startsWith('src/cli/')) return [];
  const findings: Finding[] = [];
  visit(sourceFile, (node) => {
    if (
      (ts.isPropertyAccessExpression(node) || ts.isElementAccessExpression(node)) &&
      ts.isIdentifier(node.expression) &&
      node.expression.text === 'console'
    ) {
      findings.push(finding(sourceFile, filePath, node, 'no-console', "'console' outside src/cli; log through the member's logger"));
    }
  });
  return findings;
}

/** forbiddenLayerImports maps a folder of src/ to the folders it must never import (DESIGN.md, "Layout of src/"). */
export const forbiddenLayerImports: ReadonlyMap<string, readonly string[]> = new Map([
  ['cp', ['ap']],
  ['ap', ['cp']],
  ['replica', ['cp', 'ap', 'naming', 'api', 'health', 'cli']],
]);

/** layerOf returns the folder of src/ a repo-relative path lies in ('cp', 'raft', ...), or null outside one. */
export function layerOf(filePath: string): string | null {
  const parts = filePath.split('/');
  return parts[0] === 'src' && parts.length > 2 ? (parts[1] ?? null) : null;
}

/** checkLayering is the layering rule: no import from a folder of src/ into a folder it must not depend on. */
export function checkLayering(sourceFile: ts.SourceFile, filePath: string): Finding[] {
  const forbidden = forbiddenLayerImports.get(layerOf(filePath) ?? '');
  if (forbidden === undefined) return [];
  const findings: Finding[] = [];
  for (const reference of moduleReferences(sourceFile)) {
    if (reference.specifier === null) continue;
    const resolved = resolveRelative(filePath, reference.specifier);
    const target = resolved === null ? null : layerOf(resolved);
    if (target !== null && forbidden.includes(target)) {
      const message = `src/${layerOf(filePath) ?? ''} must not import src/${target} ('${reference.specifier}')`;
      findings.push(finding(sourceFile, filePath, reference.node, 'layering', message));
    }
  }
  return findings;
}

/** rules lists every rule lintSource applies, in report order. */
export const rules: readonly Rule[] = [checkRaftPurity, checkNoExplicitAny, checkNoConsole, checkLayering];

function byPosition(a: Finding, b: Finding): number {
  return a.path.localeCompare(b.path) || a.line - b.line || a.column - b.column || a.rule.localeCompare(b.rule);
}

/** lintSource applies every rule to one file given as text at its repo-relative POSIX path. */
export function lintSource(filePath: string, text: string): Finding[] {
  const sourceFile = parseSource(filePath, text);
  return rules.flatMap((rule) => rule(sourceFile, filePath)).sort(byPosition);
}

/** sourceFilesUnder lists the TypeScript files under `directory` (absolute), recursively, sorted. */
export function sourceFilesUnder(directory: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const full = path.join(directory, entry.name);
    if (entry.isDirectory() && entry.name !== 'node_modules') files.push(...sourceFilesUnder(full));
    else if (entry.isFile() && /\.(ts|mts|cts)$/.test(entry.name)) files.push(full);
  }
  return files.sort();
}

/** LintResult is the outcome of linting a tree: the files checked and their findings. */
export interface LintResult {
  readonly files: number;
  readonly findings: readonly Finding[];
}

/** lintTree lints every TypeScript file under `<root>/src`. */
export function lintTree(root: string): LintResult {
  const files = sourceFilesUnder(path.join(root, 'src'));
  const findings = files.flatMap((file) => {
    const relative = path.relative(root, file).split(path.sep).join('/');
    return lintSource(relative, readFileSync(file, 'utf8'));
  });
  return { files: files.length, findings };
}

/** formatFinding renders one finding as `path:line:col rule message`. */
export function formatFinding(f: Finding): string {
  return `${f.path}:${f.line}:${f.column} ${f.rule} ${f.message}`;
}

/** formatSummary renders the last line of the report. */
export function formatSummary(result: LintResult): string {
  if (result.findings.length === 0) return `lint: clean (${result.files} files)`;
  const files = new Set(result.findings.map((f) => f.path)).size;
  return `lint: ${result.findings.length} finding(s) in ${files} of ${result.files} files`;
}

/** repoRoot is the repository root, two folders above this file. */
export const repoRoot: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** main lints the tree at the first argument (default: this repository) and returns the exit code. */
function main(argv: readonly string[]): number {
  const result = lintTree(path.resolve(argv[0] ?? repoRoot));
  for (const f of result.findings) process.stdout.write(`${formatFinding(f)}\n`);
  process.stdout.write(`${formatSummary(result)}\n`);
  return result.findings.length === 0 ? 0 : 1;
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) process.exitCode = main(process.argv.slice(2));
