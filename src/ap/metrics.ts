// metrics: the AP path's Prometheus metrics, on the member's registry (GET /metrics).
//
//   cairn_ap_beats_total{result}             beats: found, not_found, reregistered (from the beat body), forwarded
//   cairn_ap_forwards_total{result}          forwarded requests: ok, retried (first attempt failed), failed, served,
//                                                overflow (refused: the peer's forward queue was full)
//   cairn_ap_forward_batches_total{result}   ForwardBatch calls made: sent (answered), failed
//   cairn_ap_sync_total{event}               sync messages: sent, received, failed; verify_sent, pushback_sent,
//                                                full_push_sent (to a peer that came back up)
//   cairn_ap_verify_mismatches_total         services whose checksum differed from the responsible member's
//   cairn_ap_expiries_total{kind}            instances this member expired: unhealthy, removed
//   cairn_ap_expiry_checks_total{result}     expiry candidates after asking the peers (LastBeats): spared (a peer
//                                                heard the client, or no longer due), deferred (a live peer did not answer)
//   cairn_ap_tombstones_collected_total      tombstones forgotten after their retention (or beyond the bound)
//   cairn_ap_snapshot_loads_total{result}    start-up snapshot attempts: loaded, failed
//   cairn_ap_listener_failures_total         change listeners that threw (caught and logged)
//   cairn_ap_channels_replaced_total         peer channels replaced because they stayed unconnected for
//                                                distroPeerTimeoutMs (a connect stuck after a partition)
//   cairn_ap_entries_dropped_total{message}  items of peer messages dropped for failing validation, the rest of each
//                                                message kept (distro-codec.ts): records (an entry of a sync, pull
//                                                answer or snapshot chunk, or a record whose service key is bad),
//                                                forward (a forwarded request, answered with its error), checksums,
//                                                pull_keys, last_beats (an instance asked about, answered "never heard")
//   cairn_ap_services, _instances, _tombstones, _sessions, _live_members     sizes, read at scrape time
//   cairn_ap_tombstones_dropped_total        tombstones dropped early because distroTombstonesMax was reached
//   cairn_ap_snapshot_loaded                 1 once the start-up snapshot is loaded (readiness of the AP path)

import { Counter, Gauge, type Registry } from 'prom-client';
import { assertNever } from '../assert.ts';
import type { DistroEvent, DistroNode } from './distro.ts';

/** distroMetrics registers the AP path's metrics on `registry`; it returns the node's onEvent hook. */
export function distroMetrics(registry: Registry, node: () => DistroNode | null): (event: DistroEvent, count: number) => void {
  const registers = [registry];
  // Events are summed in plain numbers on the hot path (a beat counts twice or more) and handed to prom-client when
  // the registry is scraped: a labelled inc() hashes its labels on every call (bench/README.md "Ephemeral beats").
  const pending = new Map<DistroEvent, number>();
  const collect = (): void => {
    for (const [event, count] of pending) if (count > 0) apply(event, count);
    pending.clear();
  };
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Counter<L>({ name, help, labelNames, registers, collect });
  const beats = counter('cairn_ap_beats_total', 'Client beats by result.', ['result'] as const);
  const forwards = counter('cairn_ap_forwards_total', 'Requests forwarded to (or served for) the responsible member.', ['result'] as const);
  const batches = counter('cairn_ap_forward_batches_total', 'ForwardBatch peer calls (many forwarded requests each) by result.', ['result'] as const);
  const sync = counter('cairn_ap_sync_total', 'Distro replication messages by event.', ['event'] as const);
  const mismatches = counter('cairn_ap_verify_mismatches_total', 'Services whose checksum differed in a verify round.');
  const expiries = counter('cairn_ap_expiries_total', 'Instances expired by this member.', ['kind'] as const);
  const expiryChecks = counter('cairn_ap_expiry_checks_total', 'Expiry candidates asked about: spared (a peer heard the client, or no longer due) or deferred (a live peer did not answer).', ['result'] as const);
  const collected = counter('cairn_ap_tombstones_collected_total', 'Tombstones forgotten.');
  const snapshots = counter('cairn_ap_snapshot_loads_total', 'Start-up snapshot attempts.', ['result'] as const);
  const sessionRepairs = counter('cairn_ap_session_reregistrations_total', 'Session instances registered again because a renewal found them missing at their responsible member.');
  const listenerFailures = counter('cairn_ap_listener_failures_total', 'Change listeners that threw.');
  const channelsReplaced = counter('cairn_ap_channels_replaced_total', 'Distro peer channels replaced because they stayed unconnected for distroPeerTimeoutMs.');
  const dropped = counter('cairn_ap_entries_dropped_total', 'Items of Distro peer messages dropped because they failed validation (the rest of each message was kept), by message kind.', ['message'] as const);
  const gauge = (name: string, help: string, read: (n: DistroNode) => number): void => {
    new Gauge({
      name, help, registers,
      collect() {
        const current = node();
        if (current !== null) this.set(read(current));
      },
    });
  };
  gauge('cairn_ap_services', 'Services held by this member (with live instances or tombstones).', (n) => n.store.sizes().services);
  gauge('cairn_ap_instances', 'Live ephemeral instances held by this member.', (n) => n.store.sizes().instances);
  gauge('cairn_ap_tombstones', 'Tombstones held by this member.', (n) => n.store.sizes().tombstones);
  // A counter, read from the store's running count when scraped (a gauge named _total broke rate() in Prometheus).
  let tombstonesDroppedSeen = 0;
  new Counter({
    name: 'cairn_ap_tombstones_dropped_total', help: 'Tombstones dropped before their retention because distroTombstonesMax was reached.', registers,
    collect() {
      const current = node();
      if (current === null) return;
      const total = current.store.sizes().tombstonesDropped;
      if (total > tombstonesDroppedSeen) this.inc(total - tombstonesDroppedSeen);
      tombstonesDroppedSeen = Math.max(tombstonesDroppedSeen, total);
    },
  });
  gauge('cairn_ap_sessions', 'Open sessions on this member.', (n) => n.sessionCount);
  gauge('cairn_ap_live_members', 'Members this member sees alive (itself included).', (n) => n.liveMembers().length);
  gauge('cairn_ap_snapshot_loaded', '1 once the start-up snapshot is loaded.', (n) => (n.snapshotLoaded ? 1 : 0));
  function apply(event: DistroEvent, count: number): void {
    switch (event) {
      case 'beat_found': return beats.inc({ result: 'found' }, count);
      case 'beat_not_found': return beats.inc({ result: 'not_found' }, count);
      case 'beat_reregistered': return beats.inc({ result: 'reregistered' }, count);
      case 'beat_forwarded': return beats.inc({ result: 'forwarded' }, count);
      case 'session_reregistered': return sessionRepairs.inc(count);
      case 'forward_ok': return forwards.inc({ result: 'ok' }, count);
      case 'forward_retried': return forwards.inc({ result: 'retried' }, count);
      case 'forward_failed': return forwards.inc({ result: 'failed' }, count);
      case 'forward_served': return forwards.inc({ result: 'served' }, count);
      case 'forward_overflow': return forwards.inc({ result: 'overflow' }, count);
      case 'forward_expired': return forwards.inc({ result: 'expired' }, count);
      case 'forward_fence_waits': return forwards.inc({ result: 'fence_wait' }, count);
      case 'forward_batch_sent': return batches.inc({ result: 'sent' }, count);
      case 'forward_batch_failed': return batches.inc({ result: 'failed' }, count);
      case 'sync_sent': return sync.inc({ event: 'sent' }, count);
      case 'sync_failed': return sync.inc({ event: 'failed' }, count);
      case 'sync_received': return sync.inc({ event: 'received' }, count);
      case 'verify_sent': return sync.inc({ event: 'verify_sent' }, count);
      case 'pushback_sent': return sync.inc({ event: 'pushback_sent' }, count);
      case 'full_push_sent': return sync.inc({ event: 'full_push_sent' }, count);
      case 'verify_mismatch': return mismatches.inc(count);
      case 'expired_unhealthy': return expiries.inc({ kind: 'unhealthy' }, count);
      case 'expired_removed': return expiries.inc({ kind: 'removed' }, count);
      case 'expiry_spared': return expiryChecks.inc({ result: 'spared' }, count);
      case 'expiry_deferred': return expiryChecks.inc({ result: 'deferred' }, count);
      case 'tombstones_collected': return collected.inc(count);
      case 'listener_failed': return listenerFailures.inc(count);
      case 'snapshot_loaded': return snapshots.inc({ result: 'loaded' }, count);
      case 'snapshot_failed': return snapshots.inc({ result: 'failed' }, count);
      case 'channel_replaced': return channelsReplaced.inc(count);
      case 'entries_dropped_records': return dropped.inc({ message: 'records' }, count);
      case 'entries_dropped_forward': return dropped.inc({ message: 'forward' }, count);
      case 'entries_dropped_checksums': return dropped.inc({ message: 'checksums' }, count);
      case 'entries_dropped_pull_keys': return dropped.inc({ message: 'pull_keys' }, count);
      case 'entries_dropped_last_beats': return dropped.inc({ message: 'last_beats' }, count);
      default: return assertNever(event, 'unknown distro event');
    }
  }
  return (event, count) => {
    pending.set(event, (pending.get(event) ?? 0) + count);
  };
}
