// mounts: filesystems a test mounts to make the disk refuse (a read-only bind mount, a small tmpfs). Mounting needs
// root: without it, or when mount(8) is refused, a test skips with the reason, and fails instead under
// CAIRN_REQUIRE_ALL=1 (what CI sets), so a machine that cannot run it is never counted as passing it.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';

const requireAll = process.env.CAIRN_REQUIRE_ALL === '1';

/** isRoot tells whether this process runs as root. */
export const isRoot = process.getuid?.() === 0;

/** skipUnlessRoot skips a test that needs root, naming the reason, or fails it when CAIRN_REQUIRE_ALL=1; true when skipped. */
export function skipUnlessRoot(t: TestContext): boolean {
  if (isRoot) return false;
  assert.ok(!requireAll, 'CAIRN_REQUIRE_ALL=1: this test needs root (it mounts filesystems)');
  t.skip('needs root to mount a filesystem (run as root, or set CAIRN_REQUIRE_ALL=1 to make this a failure)');
  return true;
}

/** mountOrSkip runs mount(8) with `args`; a refused mount skips the test (fails it when CAIRN_REQUIRE_ALL=1). */
export function mountOrSkip(t: TestContext, args: readonly string[]): boolean {
  const result = spawnSync('mount', args, { encoding: 'utf8' });
  if (result.status === 0) return true;
  const reason = `mount ${args.join(' ')} was refused: ${result.error?.message ?? result.stderr.trim()}`;
  assert.ok(!requireAll, `CAIRN_REQUIRE_ALL=1: ${reason}`);
  t.skip(reason);
  return false;
}

/** unmount unmounts `target`, failing the test if it cannot. */
export function unmount(target: string): void {
  const result = spawnSync('umount', [target], { encoding: 'utf8' });
  assert.equal(result.status, 0, `umount ${target}: ${result.stderr}`);
}
