// Goal: each lint rule catches what it promises and nothing else, and the real tree is clean.
// Method: small in-memory sources at virtual paths are fed to lintSource (or to one rule); each violation must come
// back as a finding with the right rule, position and message, and clean look-alikes (property names, other
// folders, type-only words in comments and strings) must not. Last, the lint runs over the real src/ tree, and the
// command-line entry point is run as a child process on the real tree and on a dirty temporary tree to check its
// output format and exit codes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  checkLayering,
  checkNoConsole,
  checkNoExplicitAny,
  checkRaftPurity,
  formatFinding,
  formatSummary,
  lintSource,
  lintTree,
  parseSource,
  repoRoot,
  type Finding,
  type Rule,
} from './lint.ts';

/** brief reduces findings to "line:col rule" strings so tables stay readable. */
function brief(findings: readonly Finding[]): string[] {
  return findings.map((f) => `${f.line}:${f.column} ${f.rule}`);
}

function run(rule: Rule, filePath: string, text: string): Finding[] {
  return rule(parseSource(filePath, text), filePath);
}

test('raft-purity: Node builtins, packages and paths outside src/raft are reported', () => {
  const source = [
    "import fs from 'node:fs';",
    "import { join } from 'path';",
    "import { y } from '../cp/y.ts';",
    "import type { Z } from 'some-package';",
    "export * from '../../test/sim/hash.ts';",
    "import { ok } from './types.ts';",
    "import { deep } from './sub/deep.ts';",
    "const c = require('child_process');",
    "type T = import('../errors.ts').CairnError;",
    'const m = import(name);',
  ].join('\n');
  const findings = run(checkRaftPurity, 'src/raft/x.ts', source);
  const messages = findings.map((f) => `${f.line} ${f.message}`);
  assert.deepEqual(messages, [
    "1 src/raft must not import Node builtin 'node:fs'",
    "2 src/raft must not import Node builtin 'path'",
    "3 src/raft must not import '../cp/y.ts' (outside src/raft)",
    "4 src/raft must not import package 'some-package'",
    "5 src/raft must not import '../../test/sim/hash.ts' (outside src/raft)",
    "8 src/raft must not import Node builtin 'child_process'",
    "9 src/raft must not import '../errors.ts' (outside src/raft)",
    '10 src/raft must not use dynamic import()',
    "8 src/raft must not use 'require': the core imports only src/raft/ modules",
  ]);
  assert.ok(findings.every((f) => f.rule === 'raft-purity' && f.path === 'src/raft/x.ts'));
});

test('raft-purity: time, randomness, scheduling and environment are reported with their positions', () => {
  const source = [
    'const now = Date.now();',
    'const r = Math.random();',
    'setTimeout(() => tick(), 100);',
    'const id = setInterval(f, 1);',
    'setImmediate(f);',
    'queueMicrotask(f);',
    'const e = process.env.X;',
    'const t = performance.now();',
    "const d: Date = new Date();",
    "const r2 = Math['random']();",
    'const { random } = Math;',
    'const b = Buffer.from([1]);',
    'const g = globalThis;',
  ].join('\n');
  assert.deepEqual(brief(run(checkRaftPurity, 'src/raft/x.ts', source)), [
    '1:13 raft-purity',
    '2:11 raft-purity',
    '3:1 raft-purity',
    '4:12 raft-purity',
    '5:1 raft-purity',
    '6:1 raft-purity',
    '7:11 raft-purity',
    '8:11 raft-purity',
    '9:10 raft-purity',
    '9:21 raft-purity',
    '10:12 raft-purity',
    '11:7 raft-purity',
    '12:11 raft-purity',
    '13:11 raft-purity',
  ]);
  const [first, second] = run(checkRaftPurity, 'src/raft/x.ts', 'Date.now(); Math.random();');
  assert.equal(first?.message, "src/raft must not use 'Date': wall-clock time breaks determinism; the core counts ticks");
  assert.equal(second?.message, "src/raft must not use 'Math.random': randomness comes from the seeded PRNG in the config");
});

test('raft-purity: async functions, await, for await and Promise are reported', () => {
  const source = [
    'async function f() { await x; }',
    'const g = async () => 1;',
    'class C { async m() {} }',
    'function h(): Promise<void> { return Promise.resolve(); }',
    'function* gen() { yield 1; }',
    'async function k() { for await (const v of s) {} }',
  ].join('\n');
  const findings = run(checkRaftPurity, 'src/raft/x.ts', source);
  assert.deepEqual(findings.map((f) => `${f.line}:${f.column} ${f.message.split(':')[0]}`), [
    '1:1 src/raft must not declare async functions',
    '1:22 src/raft must not use \'await\'',
    '2:11 src/raft must not declare async functions',
    '3:11 src/raft must not declare async functions',
    "4:15 src/raft must not use 'Promise'",
    "4:38 src/raft must not use 'Promise'",
    '6:1 src/raft must not declare async functions',
    "6:22 src/raft must not use 'for await'",
  ]);
});

test('raft-purity: property names, comments, strings and other folders are not reported', () => {
  const clean = [
    "import { Prng } from './prng.ts';",
    "import type { Entry } from './types.ts';",
    '// Date, setTimeout and Math.random are fine in comments.',
    "const s = 'Date.now() setTimeout process';",
    'const o = { process: 1, Date: 2, setTimeout() {} };',
    'o.process; o.Date; this.process(message);',
    'class K { process(): void {} Promise = 1; get Date(): number { return 1; } }',
    'interface I { setTimeout: number; Promise(): void }',
    'const x = Math.floor(Math.imul(3, 5));',
    'const { process: renamed } = o;',
  ].join('\n');
  assert.deepEqual(run(checkRaftPurity, 'src/raft/x.ts', clean), []);
  const impure = "import fs from 'node:fs'; Date.now(); async function f() { await g(); }";
  assert.deepEqual(run(checkRaftPurity, 'src/replica/driver.ts', impure), []);
  assert.deepEqual(run(checkRaftPurity, 'test/sim/x.ts', impure), []);
  assert.deepEqual(run(checkRaftPurity, 'src/raft-extra/x.ts', impure), []);
});

test('no-explicit-any: the any keyword is reported anywhere under src/, only there', () => {
  const source = ['let a: any;', 'function f(x: any[]): Record<string, any> { return x as any; }', 'let u: unknown;'].join('\n');
  assert.deepEqual(brief(run(checkNoExplicitAny, 'src/naming/x.ts', source)), [
    '1:8 no-explicit-any',
    '2:15 no-explicit-any',
    '2:38 no-explicit-any',
    '2:57 no-explicit-any',
  ]);
  assert.equal(run(checkNoExplicitAny, 'src/raft/x.ts', 'let a: any;').length, 1);
  assert.deepEqual(run(checkNoExplicitAny, 'src/x.ts', "const any = 1; const s = 'any'; // any"), []);
  assert.deepEqual(run(checkNoExplicitAny, 'test/x.ts', 'let a: any;'), []);
});

test('no-console: console is reported in src/ except src/cli/', () => {
  const source = "console.log('x');\nconsole['error']('y');\nconst logger = { console: 1 }; logger.console;";
  const findings = run(checkNoConsole, 'src/cp/x.ts', source);
  assert.deepEqual(brief(findings), ['1:1 no-console', '2:1 no-console']);
  assert.equal(findings[0]?.message, "'console' outside src/cli; log through the member's logger");
  assert.deepEqual(run(checkNoConsole, 'src/cli/main.ts', source), []);
  assert.deepEqual(run(checkNoConsole, 'test/x.ts', source), []);
});

test('layering: cp and ap never import each other; replica imports none of the upper folders', () => {
  assert.deepEqual(
    run(checkLayering, 'src/cp/registry.ts', "import { a } from '../ap/a.ts';\nimport { r } from '../replica/r.ts';").map((f) => [f.line, f.message]),
    [[1, "src/cp must not import src/ap ('../ap/a.ts')"]],
  );
  assert.deepEqual(
    run(checkLayering, 'src/ap/distro/sync.ts', "import type { C } from '../../cp/c.ts';").map((f) => f.message),
    ["src/ap must not import src/cp ('../../cp/c.ts')"],
  );
  const replica = ['cp', 'ap', 'naming', 'api', 'health', 'cli'].map((layer) => `import '../${layer}/m.ts';`).join('\n');
  const replicaFindings = run(checkLayering, 'src/replica/driver.ts', `${replica}\nimport { RaftCore } from '../raft/raft-core.ts';\nimport { limits } from '../limits.ts';`);
  assert.deepEqual(brief(replicaFindings), ['1:8 layering', '2:8 layering', '3:8 layering', '4:8 layering', '5:8 layering', '6:8 layering']);
  assert.deepEqual(run(checkLayering, 'src/naming/q.ts', "import '../cp/c.ts'; import '../ap/a.ts';"), []);
  assert.deepEqual(run(checkLayering, 'src/cp/x.ts', "import './ap/local.ts'; import 'ap';"), []);
});

test('lintSource applies every rule and sorts findings by position', () => {
  const source = "import { y } from '../cp/y.ts';\nlet a: any = Date.now();\nconsole.log(a);";
  const findings = lintSource('src/raft/x.ts', source);
  assert.deepEqual(brief(findings), ['1:19 raft-purity', '2:8 no-explicit-any', '2:14 raft-purity', '3:1 no-console']);
  assert.equal(formatFinding(findings[0]!), "src/raft/x.ts:1:19 raft-purity src/raft must not import '../cp/y.ts' (outside src/raft)");
  assert.equal(formatSummary({ files: 3, findings }), 'lint: 4 finding(s) in 1 of 3 files');
  assert.equal(formatSummary({ files: 3, findings: [] }), 'lint: clean (3 files)');
});

test('the real src/ tree is clean', () => {
  const result = lintTree(repoRoot);
  assert.ok(result.files > 0);
  assert.deepEqual(result.findings.map(formatFinding), []);
});

test('the command line prints a summary and exits 0 on the clean tree', () => {
  const child = spawnSync(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'test/lint/lint.ts')], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  assert.equal(child.status, 0, child.stdout + child.stderr);
  assert.match(child.stdout, /^lint: clean \(\d+ files\)\n$/);
});

test('the command line prints one line per finding, a summary, and exits 1 on a dirty tree', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'cairn-lint-'));
  try {
    mkdirSync(path.join(root, 'src', 'raft'), { recursive: true });
    writeFileSync(path.join(root, 'src', 'raft', 'x.ts'), "import fs from 'node:fs';\nexport const now = Date.now();\n");
    writeFileSync(path.join(root, 'src', 'clean.ts'), 'export const one = 1;\n');
    const child = spawnSync(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'test/lint/lint.ts'), root], {
      cwd: repoRoot,
      encoding: 'utf8',
    });
    assert.equal(child.status, 1, child.stderr);
    assert.equal(
      child.stdout,
      [
        "src/raft/x.ts:1:16 raft-purity src/raft must not import Node builtin 'node:fs'",
        "src/raft/x.ts:2:20 raft-purity src/raft must not use 'Date': wall-clock time breaks determinism; the core counts ticks",
        'lint: 2 finding(s) in 1 of 2 files',
        '',
      ].join('\n'),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
