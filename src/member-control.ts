// The member's cluster control (GET /cairn/v1/cluster, leadership transfer, membership changes) and the Raft
// driver's Prometheus metrics.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { CairnError } from './errors.ts';
import { limits } from './limits.ts';
import type { ClusterControl, ClusterStatus, MemberRole, MemberStatus } from './api/http/deps.ts';
import type { RaftStatus } from './raft/raft-core.ts';
import type { Replica, ReplicaMetrics } from './replica/replica.ts';

/** memberAddressPattern is what POST/DELETE /cairn/v1/cluster/members accept: host:port. */
const memberAddressPattern = /^[A-Za-z0-9.\-]{1,253}:\d{1,5}$|^\[[0-9A-Fa-f:.]{2,45}\]:\d{1,5}$/;

/** clusterControl adapts the Raft driver to the HTTP API's ClusterControl. */
export function clusterControl(replica: Replica, self: string, serving: () => boolean): ClusterControl {
  const leaderOnly = (): void => {
    const status = replica.status();
    if (status.role !== 'leader') {
      throw new CairnError(status.leader === null ? 'CAIRN_NO_LEADER' : 'CAIRN_NOT_LEADER', `send cluster changes to the leader${status.leader === null ? '' : ` ${status.leader}`}`, {
        details: { leader: status.leader },
      });
    }
  };
  const validAddress = (addr: string): void => {
    if (!memberAddressPattern.test(addr)) throw new CairnError('CAIRN_INVALID_ARGUMENT', `'${addr}' is not a member address HOST:PORT`);
  };
  return {
    status: () => clusterStatus(replica.status(), self),
    transferLeader: async (to) => {
      validAddress(to);
      leaderOnly();
      await replica.transferLeadership(to);
    },
    addMember: async (addr) => {
      validAddress(addr);
      leaderOnly();
      await replica.addMember(addr, limits.memberCatchUpMs);
    },
    removeMember: async (addr) => {
      validAddress(addr);
      leaderOnly();
      await replica.removeMember(addr);
    },
    stateDigest: async () => ({ member: self, ...(await replica.stateDigest()) }),
    checkpoints: () => ({ member: self, ...replica.checkpointReport() }),
    ready: serving,
  };
}

/** clusterStatus shapes the core's status as GET /cairn/v1/cluster reports it (DESIGN.md). */
export function clusterStatus(status: RaftStatus, self: string): ClusterStatus {
  const members = [...status.membership.voters, ...status.membership.learners];
  if (!members.includes(self)) members.push(self);
  return {
    leader: status.leader,
    term: status.term,
    members: members.sort().map((addr) => memberStatus(status, self, addr)),
  };
}

function memberStatus(status: RaftStatus, self: string, addr: string): MemberStatus {
  const learner = status.membership.learners.includes(addr);
  if (addr === self) {
    const role: MemberRole = learner ? 'learner' : status.membership.voters.includes(addr) ? status.role : 'unknown';
    return { addr, role, term: status.term, commitIndex: status.commitIndex, appliedIndex: status.appliedIndex, matchIndex: status.lastIndex, lastContactMs: 0 };
  }
  const progress = status.progress[addr];
  const role: MemberRole = learner ? 'learner' : addr === status.leader ? 'leader' : status.role === 'leader' ? 'follower' : 'unknown';
  // A follower knows only its leader's contact time; the leader knows each follower's match index and contact.
  const lastContactMs = progress !== undefined
    ? progress.ticksSinceHeard * limits.raftTickMs
    : addr === status.leader ? status.ticksSinceLeaderContact * limits.raftTickMs : null;
  // Another member's term and indexes are its own; this member does not know them, and says so rather than guess
  // (it once reported the viewer's term, and a follower's match index as both its commit and applied index).
  return { addr, role, term: null, commitIndex: null, appliedIndex: null, matchIndex: progress?.match ?? null, lastContactMs };
}

/** replicaMetrics registers the driver's Prometheus metrics. */
export function replicaMetrics(registry: Registry): ReplicaMetrics {
  const fsync = new Histogram({
    name: 'cairn_raft_fsync_seconds',
    help: 'Latency of one fsynced Raft write (group commit: one per Ready).',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  const batch = new Histogram({
    name: 'cairn_raft_ready_entries',
    help: 'Entries persisted per Ready (group commit batch size).',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 1024],
    registers: [registry],
  });
  const proposals = new Counter({ name: 'cairn_raft_proposals_total', help: 'Proposals by outcome.', labelNames: ['outcome'], registers: [registry] });
  const checkpoints = new Counter({
    name: 'cairn_replica_checkpoints_total',
    help: 'Checkpoint digests of the stored keyspace by outcome (digested, skipped while one ran, failed).',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const comparisons = new Counter({
    name: 'cairn_replica_checkpoint_comparisons_total',
    help: "Comparisons of this member's checkpoint digest with a peer's at the same applied index; any 'differ' means the replicas diverged.",
    labelNames: ['outcome'],
    registers: [registry],
  });
  const snapshots = new Counter({
    name: 'cairn_raft_snapshots_total',
    help: "Log compactions (compacted), images encoded for a follower behind the compacted log (image_encoded), snapshots installed from a leader (installed).",
    labelNames: ['event'],
    registers: [registry],
  });
  const contactsRefused = new Counter({
    name: 'cairn_raft_peer_contacts_refused_total',
    help: 'Peer messages dropped because their sender was new and its contact could not be recorded: peerContactsMax peers recorded already (full), or too many first contacts being recorded at once (busy).',
    labelNames: ['reason'],
    registers: [registry],
  });
  for (const reason of ['full', 'busy']) contactsRefused.inc({ reason }, 0);
  for (const event of ['compacted', 'image_encoded', 'installed']) snapshots.inc({ event }, 0);
  for (const outcome of ['digested', 'skipped', 'failed']) checkpoints.inc({ outcome }, 0);
  for (const outcome of ['agree', 'differ']) comparisons.inc({ outcome }, 0);
  return {
    fsyncSeconds: (seconds) => fsync.observe(seconds),
    readyBatch: (entries) => {
      if (entries > 0) batch.observe(entries);
    },
    proposal: (outcome) => proposals.inc({ outcome }),
    checkpoint: (outcome) => checkpoints.inc({ outcome }),
    checkpointComparison: (outcome) => comparisons.inc({ outcome }),
    snapshot: (event) => snapshots.inc({ event }),
    peerContactRefused: (reason) => contactsRefused.inc({ reason }),
  };
}

/** registerRaftGauges exposes term, commit and applied index, read at scrape time. */
export function registerRaftGauges(registry: Registry, status: () => RaftStatus): void {
  const gauges: [string, string, (s: RaftStatus) => number][] = [
    ['cairn_raft_term', 'Current Raft term.', (s) => s.term],
    ['cairn_raft_commit_index', 'Highest committed log index.', (s) => s.commitIndex],
    ['cairn_raft_applied_index', 'Highest applied log index.', (s) => s.appliedIndex],
    ['cairn_raft_snapshot_index', 'Index of the latest snapshot: the log before it is compacted away.', (s) => s.snapshotIndex],
    ['cairn_raft_is_leader', '1 when this member leads.', (s) => (s.role === 'leader' ? 1 : 0)],
  ];
  for (const [name, help, read] of gauges) {
    registry.registerMetric(new GaugeOf(name, help, () => read(status())));
  }
}

/** GaugeOf is a gauge whose value is read when Prometheus scrapes. */
class GaugeOf extends Gauge {
  constructor(name: string, help: string, read: () => number) {
    super({
      name,
      help,
      registers: [],
      collect() {
        this.set(read());
      },
    });
  }
}
