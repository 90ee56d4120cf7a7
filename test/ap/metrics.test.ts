// Goal: the AP path's running counts are exported as Prometheus counters, so rate() works on them: an audit found
// cairn_ap_tombstones_dropped_total exported as a gauge. The counter follows the store's running count across scrapes
// and never goes back.
// Method: distroMetrics over a stand-in node whose store reports a running count the test moves; the registry's text
// is read as Prometheus would scrape it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { distroMetrics } from '../../src/ap/metrics.ts';
import type { DistroNode } from '../../src/ap/distro.ts';

test('cairn_ap_tombstones_dropped_total is a counter that follows the running count of the store', async () => {
  let tombstonesDropped = 0;
  const node = {
    store: { sizes: () => ({ services: 1, instances: 2, tombstones: 3, tombstonesDropped }) },
    sessionCount: 0,
    liveMembers: () => ['a'],
    snapshotLoaded: true,
  } as unknown as DistroNode;
  const registry = new Registry();
  distroMetrics(registry, () => node);
  const scrape = async (): Promise<string> => registry.metrics();
  assert.match(await scrape(), /# TYPE cairn_ap_tombstones_dropped_total counter\ncairn_ap_tombstones_dropped_total 0\n/);
  tombstonesDropped = 5;
  assert.match(await scrape(), /\ncairn_ap_tombstones_dropped_total 5\n/);
  assert.match(await scrape(), /\ncairn_ap_tombstones_dropped_total 5\n/, 'a second scrape adds nothing');
  tombstonesDropped = 12;
  assert.match(await scrape(), /\ncairn_ap_tombstones_dropped_total 12\n/);
  assert.match(await scrape(), /# TYPE cairn_ap_instances gauge\ncairn_ap_instances 2\n/);
});
