// Goal: the responsible member of a service (src/ap/responsibility.ts; NACOS.md §6 DistroMapper) is a pure,
// stable function of the service key and the sorted live members: every member that sees the same live set picks
// the same one, keys spread over the members, and a member's keys move only when the live set changes.
//
// Method: table checks over generated keys.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { responsibleMember, serviceIdOf } from '../../src/ap/responsibility.ts';
import { compareVersions, HybridClock } from '../../src/ap/version.ts';

const members = ['127.0.1.130:18848', '127.0.1.131:18848', '127.0.1.132:18848'];

test('the responsible member is deterministic and keys spread over the live members', () => {
  const counts = new Map<string, number>();
  for (let i = 0; i < 3000; i++) {
    const id = serviceIdOf('public', 'DEFAULT_GROUP', `svc-${i}`);
    const chosen = responsibleMember(id, members);
    assert.equal(responsibleMember(id, [...members]), chosen);
    counts.set(chosen, (counts.get(chosen) ?? 0) + 1);
  }
  for (const member of members) {
    const share = (counts.get(member) ?? 0) / 3000;
    assert.ok(share > 0.25 && share < 0.42, `${member} holds ${share}`);
  }
  // The namespace is part of the key.
  const spread = new Set(Array.from({ length: 50 }, (_, i) => responsibleMember(serviceIdOf(`ns${i}`, 'G', 'same'), members)));
  assert.equal(spread.size, 3);
});

test('each side of a partition picks among its own members; a lone member is responsible for everything', () => {
  const id = serviceIdOf('public', 'DEFAULT_GROUP', 'orders');
  assert.ok(members.slice(0, 2).includes(responsibleMember(id, members.slice(0, 2))));
  assert.equal(responsibleMember(id, [members[2]!]), members[2]);
  assert.throws(() => responsibleMember(id, []));
});

test('hybrid logical clock: versions grow past the wall clock and past everything observed; ties break by member', () => {
  const clock = new HybridClock('b');
  const first = clock.tick(1000);
  const second = clock.tick(1000);
  assert.ok(compareVersions(second, first) > 0);
  const third = clock.tick(900);
  assert.ok(compareVersions(third, second) > 0, 'a wall clock going back does not go back in versions');
  clock.observe({ wallMs: 5000, counter: 7, member: 'a' });
  const fourth = clock.tick(1000);
  assert.deepEqual(fourth, { wallMs: 5000, counter: 8, member: 'b' });
  assert.ok(compareVersions({ wallMs: 1, counter: 0, member: 'a' }, { wallMs: 1, counter: 0, member: 'b' }) < 0);
  assert.equal(compareVersions(fourth, { ...fourth }), 0);
});
