// Goal: a workload's element <-> "ip:port" mapping is a bijection on its range and nothing else maps into it, so two
// workloads' instances (beats, sessions) can never be read as each other's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { elementAddresses } from '../../jepsen-like/workloads/element-addresses.ts';
import { beatAddress, beatElementOf, beatElementsMax } from '../../jepsen-like/workloads/beats.ts';
import { sessionAddress, sessionElementOf, sessionElementsMax } from '../../jepsen-like/workloads/sessions.ts';

test('every element maps to its own address and back; the range ends where it says', () => {
  const range = elementAddresses('demo', '127.0.0.14', 40_000, 5);
  const seen = new Set<string>();
  for (let n = 0; n < 5; n++) {
    const address = range.address(n);
    assert.ok(!seen.has(address), `element ${n} has a fresh address`);
    seen.add(address);
    const [ip, port] = address.split(':');
    assert.equal(range.elementOf(ip ?? '', Number(port)), n);
  }
  assert.equal(range.address(4), '127.0.0.14:40004');
  assert.throws(() => range.address(5), /demo element 5 out of range/);
  assert.throws(() => range.address(-1), RangeError);
  assert.throws(() => range.address(1.5), RangeError);
});

test('addresses outside the range, on another ip or not integers, are no element', () => {
  const range = elementAddresses('demo', '127.0.0.14', 40_000, 5);
  assert.equal(range.elementOf('127.0.0.14', 39_999), null);
  assert.equal(range.elementOf('127.0.0.14', 40_005), null);
  assert.equal(range.elementOf('127.0.0.15', 40_000), null);
  assert.equal(range.elementOf('127.0.0.14', 40_000.5), null);
  assert.throws(() => elementAddresses('bad', '127.0.0.14', 65_000, 1000), /not a valid range/);
  assert.throws(() => elementAddresses('bad', '127.0.0.14', 1000, 0), /not a valid range/);
});

test('the beats and sessions ranges do not overlap', () => {
  for (const n of [0, 1, beatElementsMax - 1]) {
    const [ip, port] = beatAddress(n).split(':');
    assert.equal(beatElementOf(ip ?? '', Number(port)), n);
    assert.equal(sessionElementOf(ip ?? '', Number(port)), null, `beat element ${n} is no session element`);
  }
  for (const n of [0, 1, sessionElementsMax - 1]) {
    const [ip, port] = sessionAddress(n).split(':');
    assert.equal(sessionElementOf(ip ?? '', Number(port)), n);
    assert.equal(beatElementOf(ip ?? '', Number(port)), null, `session element ${n} is no beat element`);
  }
});
