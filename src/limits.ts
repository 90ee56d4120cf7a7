// Every maximum of Cairn, each with its reason (STYLE.md §3), and the relations between them, checked at start-up.
//
// Names put the qualifier and the unit last: `inflightBytesMax`, `electionTicks`, `probeTimeoutMs`. Sizes are in
// bytes, durations in milliseconds unless the name says ticks. Name lengths are in UTF-16 code units ("Chars"),
// which is what Nacos counts (Java's String.length()) and what JavaScript's String.length counts, so a name Nacos
// accepts is accepted here. Overflow behaviour is stated beside each limit: a typed error from src/errors.ts,
// back-pressure, or drop-and-count.

const KiB = 1024;
const MiB = 1024 * KiB;

/** Limits is the shape of the limits object; tests build broken copies of it. */
export interface Limits {
  // --- Raft core (mirrors RaftConfig in src/raft/types.ts; the driver copies these into the config) ---
  readonly raftTickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly inflightMessagesMax: number;
  readonly inflightBytesMax: number;
  readonly messageBytesMax: number;
  readonly uncommittedBytesMax: number;
  readonly committedBytesPerReadyMax: number;
  readonly snapshotChunkBytes: number;
  readonly pendingReadsMax: number;
  readonly entryBytesMax: number;
  readonly requestTimeoutMs: number;
  readonly proposalsPendingMax: number;
  readonly forwardBatchRequestsMax: number;
  readonly snapshotEntries: number;
  readonly snapshotCatchUpEntriesMax: number;
  readonly checkpointEntries: number;
  readonly memberCatchUpMs: number;
  readonly bootstrapWaitMs: number;
  // --- Peer transport ---
  readonly peerSendQueueMessagesMax: number;
  readonly peerSendQueueBytesMax: number;
  readonly peerMessageBytesMax: number;
  readonly peerContactsMax: number;
  readonly peerStreamsPerConnectionMax: number;
  readonly peerConnectionsMax: number;
  readonly peerContactBacklogMessagesMax: number;
  readonly peerSourceEndpointsMax: number;
  readonly backupBytesMax: number;
  readonly backupHeaderBytesMax: number;
  readonly backupMembersMax: number;
  readonly nodeIdCharsMax: number;
  readonly peerContactSendersPendingMax: number;
  // --- Client requests ---
  readonly requestBodyBytesMax: number;
  readonly logUrlCharsMax: number;
  readonly grpcAnswerMarginMs: number;
  readonly requestJsonDepthMax: number;
  readonly requestReceiveMsMax: number;
  readonly httpConnectionsCheckMs: number;
  readonly httpConnectionsMax: number;
  readonly connectionRefusalLogIntervalMs: number;
  readonly stallCheckMs: number;
  readonly stallThresholdMs: number;
  readonly stallGraceMs: number;
  readonly stallGraceMsMax: number;
  // --- Naming model (NACOS.md §5.6) ---
  readonly namespaceIdCharsMax: number;
  readonly groupNameCharsMax: number;
  readonly serviceNameCharsMax: number;
  readonly clusterNameCharsMax: number;
  readonly ipCharsMax: number;
  readonly metadataCharsMax: number;
  readonly instancesPerServiceMax: number;
  readonly servicesPerNamespaceMax: number;
  readonly namespacesMax: number;
  readonly clustersPerServiceMax: number;
  readonly selectorExpressionCharsMax: number;
  readonly healthCheckerCharsMax: number;
  // --- Persistent registry (src/cp) ---
  readonly requestIdCharsMax: number;
  readonly requestIdsRememberedMax: number;
  readonly requestResultsBytesMax: number;
  // --- Active health checks (NACOS.md §4) ---
  readonly probeTimeoutMs: number;
  readonly probeConcurrencyMax: number;
  readonly probeConnectionsHeldMax: number;
  readonly probeIntervalMsMin: number;
  readonly probeIntervalMsMax: number;
  readonly healthFlipProbes: number;
  readonly healthFlipsPerEntryMax: number;
  // --- AP path: ephemeral instances (NACOS.md §5.3, §6) ---
  readonly beatIntervalMs: number;
  readonly unhealthyAfterMs: number;
  readonly removeAfterMs: number;
  readonly distroSyncDelayMs: number;
  readonly distroSyncBatchMax: number;
  readonly distroVerifyIntervalMs: number;
  readonly distroHeartbeatIntervalMs: number;
  readonly distroHeartbeatMissesMax: number;
  readonly distroPeerTimeoutMs: number;
  readonly distroForwardFenceMs: number;
  readonly distroForwardSkewMs: number;
  readonly distroMessageBytesMax: number;
  readonly distroMessageEntriesMax: number;
  readonly distroTombstoneRetentionMs: number;
  readonly distroTombstonesMax: number;
  readonly distroExpiryTickMs: number;
  readonly distroExpiryScanEntriesMax: number;
  readonly distroSnapshotRetriesMax: number;
  readonly beatAnswersCachedMax: number;
  readonly logItemsNamedMax: number;
  readonly logPeerTextCharsMax: number;
  readonly distroSnapshotRetryDelayMs: number;
  readonly distroSnapshotTimeoutMs: number;
  readonly distroSessionTimeoutMs: number;
  readonly distroSessionsMax: number;
  readonly distroSessionInstancesMax: number;
  readonly distroForwardBatchDelayMs: number;
  readonly distroForwardBatchEntriesMax: number;
  readonly distroForwardPendingMax: number;
  readonly preservedTimeoutMsMax: number;
  // --- Subscriptions and pushes (NACOS.md §2) ---
  readonly subscribersPerServiceMax: number;
  readonly grpcSubscribersMax: number;
  readonly grpcStreamsPerConnectionMax: number;
  readonly grpcConnectionsMax: number;
  readonly healthWatchersMax: number;
  readonly subscribeCatchUpWaitersMax: number;
  readonly subscribeCatchUpMsMax: number;
  readonly subscribeRevisionAheadMsMax: number;
  readonly pushQueueMessagesMax: number;
  readonly pushMergeWindowMs: number;
  readonly pushMergeFullSubscribers: number;
  readonly udpPushAckTimeoutMs: number;
  readonly udpPushRetriesMax: number;
  readonly udpPacketBytesMax: number;
  readonly udpPushTargetsMax: number;
  readonly udpPushTargetExpiryMs: number;
  readonly pushStallMsMax: number;
  readonly sessionRequestsPendingMax: number;
  // --- Read caches (src/naming/list-cache.ts) ---
  readonly listCacheEntriesMax: number;
  readonly listCacheInstancesMax: number;
  readonly internSlots: number;
  readonly internCharsMax: number;
}

/** limits is the frozen set of every maximum Cairn runs with. */
export const limits: Limits = Object.freeze({
  // --- Raft core ---
  // One tick is the core's unit of time; 100 ms keeps the timer cheap and elections well under a second's jitter.
  raftTickMs: 100,
  // Election timeout drawn from [10, 20) ticks = 1-2 s: ten heartbeats fit in the shortest one, so a single lost
  // heartbeat never starts an election, and a dead leader is replaced within about 2 s.
  electionTicks: 10,
  // A heartbeat every tick (100 ms) keeps followers' leases fresh and spreads commit indexes quickly.
  heartbeatTicks: 1,
  // Un-acknowledged AppendRequests per follower (etcd's default): enough to pipeline over a LAN at full speed;
  // beyond it the leader waits for acknowledgements (back-pressure) instead of queueing without bound.
  inflightMessagesMax: 256,
  // Un-acknowledged entry bytes per follower: bounds the leader's memory per slow follower (16 MiB x 4 followers).
  inflightBytesMax: 16 * MiB,
  // Entry bytes in one AppendRequest: large enough to amortise per-message cost, small enough that one message
  // never stalls heartbeats behind it for long (etcd's MaxSizePerMsg).
  messageBytesMax: 1 * MiB,
  // Appended but uncommitted bytes at the leader: beyond it proposals are refused with
  // CAIRN_UNCOMMITTED_BYTES_EXCEEDED, so a leader that cannot commit does not grow its log without bound.
  uncommittedBytesMax: 32 * MiB,
  // Committed bytes handed to the state machine per Ready: bounds one apply batch (one LevelDB write) while
  // still applying at least what one AppendRequest can commit.
  committedBytesPerReadyMax: 4 * MiB,
  // One InstallSnapshot chunk: a peer message like an append, so it stays within the append budget.
  snapshotChunkBytes: 512 * KiB,
  // Reads waiting for a ReadIndex confirmation: beyond it readIndex() refuses with CAIRN_TOO_MANY_PENDING_READS.
  pendingReadsMax: 4096,
  // One log entry (one encoded command): bounds every single write; larger commands get CAIRN_ENTRY_TOO_LARGE.
  entryBytesMax: 512 * KiB,
  // Every request that waits on Raft (write, linearizable read, forward to the leader) is answered within this:
  // CAIRN_NO_QUORUM / CAIRN_NO_LEADER before the proposal left, CAIRN_OUTCOME_UNKNOWN after (DESIGN.md: 5 s).
  requestTimeoutMs: 5000,
  // Proposals one member holds waiting to commit; beyond it writes are refused at once (back-pressure) rather than
  // queueing into timeouts. The uncommitted-bytes bound of the core usually binds first. It is also what bounds a
  // group commit: the writes queued since the last Ready join the core's log as one proposal, and the next Ready
  // writes them in one LevelDB batch, so a leader's batch holds at most this many proposals (a follower's, what the
  // leader's window lets through: inflightMessagesMax, inflightBytesMax). A tighter cap per Ready was measured and
  // dropped: it costs a write, a peer message and an acknowledgement per extra Ready (bench/README.md, sessions 17, 24).
  proposalsPendingMax: 16_384,
  // Writes a follower sends the leader in one ForwardBatch call (src/replica/forward-queue.ts): those that reached it in
  // one turn of its event loop, at most this many and messageBytesMax of commands. One unary call per write cost the
  // forwarding member ~420 µs of CPU per write at 64 clients (bench/README.md, session 24).
  forwardBatchRequestsMax: 256,
  // A snapshot every 10 000 applied entries keeps the in-memory log (the core reads it from memory) to a few MiB of
  // registry commands and a restart's replay short; InstallSnapshot covers followers further behind.
  snapshotEntries: 10_000,
  // A compaction keeps a trail of the log before the applied index (src/replica/replica.ts catchUpTrail: half of
  // snapshotEntries, at most 10 000, unless --snapshot-catchup-entries says otherwise). The kept entries stay in the
  // member's memory, ~600 bytes each for an instance record: ~600 MB at this bound.
  snapshotCatchUpEntriesMax: 1_000_000,
  // Members digest their stored keyspace at every applied index that is a multiple of this and compare the digests
  // (src/replica/checkpoints.ts). A digest reads the whole keyspace (3 s of one core at 1M instances, session 22):
  // at 2 000 writes/s (a checkpoint every 50 s) that is ~6% of a core at that size. A quiet cluster is checked
  // rarely: run `cairn check` after maintenance. 0 turns it off (--checkpoint-every).
  checkpointEntries: 100_000,
  // How long POST /cairn/v1/cluster/members waits for a new learner to catch up before promoting it; beyond it the
  // member stays a learner and the operator retries.
  memberCatchUpMs: 60_000,
  // How long a member with an empty data directory waits for every member to answer its bootstrap check.
  bootstrapWaitMs: 600_000,

  // --- Peer transport ---
  // Messages queued to one peer: at least a full pipeline plus heartbeats; beyond it messages to that peer are
  // dropped and counted (Raft retransmits), so a dead peer cannot exhaust memory.
  peerSendQueueMessagesMax: 1024,
  // Bytes queued to one peer: at least a full pipeline; beyond it messages are dropped and counted.
  peerSendQueueBytesMax: 32 * MiB,
  // Largest encoded peer message accepted on the wire (gRPC max receive size): room for a full AppendRequest
  // plus its framing and per-entry headers; larger messages are refused by the transport.
  peerMessageBytesMax: 4 * MiB,
  // Calls one connection to the peer port may have open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS): a member
  // opens one Raft Stream and a Distro stream or two, and its forwarded writes and Distro calls in flight, tens at
  // most (one ForwardBatch carries up to forwardBatchRequestsMax writes); beyond it a caller's further calls wait for
  // a free stream. Without it grpc-js takes any number, each holding memory, from any caller of the port.
  peerStreamsPerConnectionMax: 1024,
  // Open connections to the peer port (src/replica/capped-grpc-server.ts). Each other member opens two (its Raft link
  // and its Distro client), and replaces one now and then (a stream not established in time gets a new channel while
  // the old connection finishes its calls); `cairn backup save --from` opens one for its backup. A 7-member cluster
  // needs about 12 plus a few backups; 256 covers every member of the largest cluster the tools accept
  // (backupMembersMax) many times over, while a caller of the unauthenticated port can hold at most 256 connections
  // of ~20 KB each (idle HTTP/2 sessions measured at ~17 KB of the member's memory each in session 32). Beyond it a
  // new connection is closed at once, before any byte is read, and counted
  // (cairn_peer_transport_events_total{event="connection_refused"}); a warn line says how many, at most once per
  // connectionRefusalLogIntervalMs. The members' own connections, already open, are unaffected.
  peerConnectionsMax: 256,
  // Messages held from one peer while its first contact is being recorded (one fsynced put): beyond it they are
  // dropped, which Raft tolerates (the peer sends again).
  peerContactBacklogMessagesMax: 1024,
  // Peer endpoints whose connections are bound to a local source address (src/replica/source-address.ts: a member's
  // peer connections leave from its own address, so partitions between member addresses cut them): far more than
  // any process has peers.
  peerSourceEndpointsMax: 4096,
  // A backup file (cairn backup): the image is held in memory whole (a 1M-instance registry is ~0.8 GB); beyond it a
  // backup is refused (CAIRN_INVALID_ARGUMENT on save, CAIRN_STORAGE_CORRUPT on reading one that claims more).
  backupBytesMax: 2 * 1024 * 1024 * 1024 - 1,
  // A backup's JSON header (its format, members, applied index, image checksum): a few hundred bytes for a 7-member
  // cluster; a file whose header claims more is refused as damaged (CAIRN_STORAGE_CORRUPT) before it is read.
  backupHeaderBytesMax: 64 * KiB,
  // Members named by a backup header or a restore's --members: Raft groups have 3, 5 or 7 voters; more is refused
  // (CAIRN_STORAGE_CORRUPT in a header, a usage error on the command line).
  backupMembersMax: 15,
  // A member id (its --addr, HOST:PORT) on the peer wire: a DNS name (253) plus ":65535" fits; a longer id in a peer
  // message makes the message invalid (refused by the peer codec and counted).
  nodeIdCharsMax: 260,
  // Peers a member durably records having heard from (src/replica/replica.ts onMessage; the wiped-member check of
  // src/replica/bootstrap.ts asks for them). Every member a cluster ever had fits many times over (a Raft group has a
  // handful of voters; replacements add a few a year); the peer port is not authenticated, and without this any
  // caller could add an fsynced record per made-up sender id. Beyond it a message from a sender not yet recorded is
  // dropped and counted (cairn_raft_peer_contacts_refused_total), which Raft tolerates; recorded peers are unaffected.
  peerContactsMax: 1000,
  // Senders whose first contact is being recorded at one time (one fsynced put each); a message from yet another new
  // sender meanwhile is dropped and counted as above. A real cluster has at most a few new senders at once.
  peerContactSendersPendingMax: 16,

  // --- Client requests ---
  // An HTTP body or gRPC request message: larger ones get CAIRN_REQUEST_TOO_LARGE before any parsing work.
  requestBodyBytesMax: 256 * KiB,
  // A URL in a log line (HTTP access and error lines): Node lets a request line reach 16 KiB, and a log line per
  // request of that size is a way to fill a disk; longer URLs are cut, saying how much was.
  logUrlCharsMax: 512,
  // A gRPC call with a deadline is answered this long before it (src/api/grpc/server.ts callBudget): a write that
  // cannot commit is refused with its code (CAIRN_NO_QUORUM, CAIRN_OUTCOME_UNKNOWN) before the client's deadline
  // fires with a bare DEADLINE_EXCEEDED, which tells the client neither whether the write was made nor what to do.
  // Covers the answer's trip back through an event loop lagging on a loaded machine (CI's two vCPUs); a call with
  // less time left is answered at half of it.
  grpcAnswerMarginMs: 250,
  // Nesting of a JSON request body: parameters are flat, their values at most an object or two deep (metadata, a
  // health checker, a beat), so 32 levels leave room while a body of 256 KiB of brackets, whose every recursive walk
  // (JSON.stringify) would overflow the stack, is refused with CAIRN_INVALID_ARGUMENT before any parameter is read.
  requestJsonDepthMax: 32,
  // An HTTP request's headers and body must arrive within this of its start, or the connection is closed (408): a
  // request delayed in the network (a client that gave up during a partition, its kernel retransmitting the data
  // after the heal) is refused, not applied a minute late (jepsen-like D3, seed 21021: a dead client's beat landed
  // 54 s after it was sent and registered its instance again). Node's default is 60 s for the headers, 300 s in all.
  requestReceiveMsMax: 10_000,
  // How often the HTTP server looks for requests past requestReceiveMsMax (Node's default is 30 s).
  httpConnectionsCheckMs: 1000,
  // Open connections to the HTTP port (Node's server.maxConnections): each Nacos v1 client keeps one (or a few)
  // alive to the member it talks to, so thousands are normal; beyond this a new connection is closed at once, before
  // any request is read, so a flood of connections cannot exhaust the member's file descriptors and memory.
  httpConnectionsMax: 16_384,
  // A port that refuses connections beyond its bound (grpcConnectionsMax, peerConnectionsMax) logs at most one warn
  // line per this long, with how many it refused since the last one: a flood of connections must not become a flood of
  // log lines. Every refusal is counted in a metric at once.
  connectionRefusalLogIntervalMs: 10_000,
  // The stall fence (src/stall.ts): a timer every stallCheckMs notes that the event loop runs; a gap over
  // stallThresholdMs is a stall (SIGSTOP, a VM pause, a long GC), and client writes read during it or within
  // stallGraceMs after it are refused (CAIRN_MEMBER_STALLED, retryable, nothing written): they may have waited in the
  // socket while their clients gave up and moved on. The threshold is well under the clients' timeouts (5 s for
  // urllib under the nacos client and for `cairn` itself), so a write refused was delayed for no more than that.
  stallCheckMs: 100,
  stallThresholdMs: 1000,
  // The grace only has to cover the loop turn after the one that resumed (a connection accepted in that first turn
  // is read in the next): every write read in it refuses a client that may still be waiting. At 500 ms, jepsen-like
  // D6 (seed 49204) refused 121 writes after 26 pauses, a third of them sent after the member had resumed.
  stallGraceMs: 150,
  // The grace goes on past stallGraceMs while the timer still fires late (the loop draining what queued during the
  // stall: after a 38 s pause a queued write was read 154 ms after the stall was seen), until two ticks in a row come
  // on time; this bounds it for a member whose timer never comes on time again (starved of CPU), which then serves.
  stallGraceMsMax: 3000,

  // --- Naming model: the length maxima of Nacos 2.x's parameter checker, so Nacos-valid names stay valid ---
  namespaceIdCharsMax: 64,
  groupNameCharsMax: 128,
  serviceNameCharsMax: 512,
  clusterNameCharsMax: 64,
  ipCharsMax: 128,
  // Sum of key and value lengths of one metadata map (instance, service or cluster), Nacos's 1024 chars
  // (nacos.naming.service.metadata.length); at most 3 KiB in UTF-8. Larger: CAIRN_METADATA_TOO_LARGE.
  metadataCharsMax: 1024,
  // Instances of one service: every change pushes the whole list to every subscriber, so the list is bounded
  // (2000 x ~3.5 KiB worst case = 7 MiB). More: CAIRN_INSTANCES_PER_SERVICE_EXCEEDED.
  instancesPerServiceMax: 2000,
  // Services of one namespace: bounds the service list, its pages and the state machine's per-namespace index.
  // More: CAIRN_SERVICES_PER_NAMESPACE_EXCEEDED.
  servicesPerNamespaceMax: 10_000,
  // Namespaces of the cluster: bounds the top-level index. More: CAIRN_NAMESPACES_EXCEEDED.
  namespacesMax: 1000,
  // Clusters of one service (configured clusters plus clusters holding instances): clusters name data centres or
  // environments, a handful per service; the bound keeps a service's definition (and every push of it) small.
  // More: CAIRN_CLUSTERS_PER_SERVICE_EXCEEDED.
  clustersPerServiceMax: 256,
  // A service's label selector expression (`CONSUMER.label.k = PROVIDER.label.k & ...`): a few labels, like
  // metadata. Longer: CAIRN_INVALID_ARGUMENT.
  selectorExpressionCharsMax: 1024,
  // Summed lengths of a health checker's strings (HTTP path and headers, MySQL user, password and SQL): one probe
  // request's worth, so a cluster configuration always fits one log entry. Longer: CAIRN_INVALID_ARGUMENT.
  healthCheckerCharsMax: 4096,

  // --- Persistent registry (src/cp) ---
  // A write's request id (client-chosen, or a UUID of 36 chars generated by the caller). Longer: CAIRN_INVALID_ARGUMENT.
  requestIdCharsMax: 128,
  // Results of the most recent writes, remembered by request id so that a retry of a write that committed (after
  // CAIRN_OUTCOME_UNKNOWN) returns the first result instead of applying twice. Clients retry within seconds
  // (requestTimeoutMs plus backoff); 100 000 writes cover well over ten seconds at the persistent-write rates
  // Nacos publishes (NACOS.md §8). The oldest (lowest log index) is forgotten first, deterministically.
  requestIdsRememberedMax: 100_000,
  // Bytes of remembered results (results plus ids): bounds the table's memory and its share of a snapshot even when
  // every result carries a large instance; the oldest are forgotten first when either bound is passed.
  requestResultsBytesMax: 32 * MiB,

  // --- Active health checks ---
  // One probe (TCP connect, HTTP request, MySQL query); Nacos uses 500 ms, which flaps under load; 2 s is still
  // below the shortest interval, so probes of one target never overlap.
  probeTimeoutMs: 2000,
  // Probes in flight per member: bounds the sockets and MySQL connections in use at once; excess probes wait their
  // turn. Connections kept idle between probes are bounded apart (probeConnectionsHeldMax).
  probeConcurrencyMax: 256,
  // Connections a member keeps open between probes, per prober (MySQL: one per target, as Nacos caches them; HTTP:
  // keep-alive, one per origin): the targets a member probes are bounded only by the registry's quotas, and each
  // kept connection is a file descriptor here and a connection slot on the target (MySQL's max_connections is 151 by
  // default). Beyond it the least recently used idle MySQL connection is closed, and an HTTP probe to an origin not
  // held goes on a connection closed after it (counted by nothing: it only costs a handshake per probe), as does a
  // probe of an origin whose kept connection is busy with another target's probe (services sharing one ip:port), so
  // that no probe waits behind another; probeConcurrencyMax bounds those connections.
  probeConnectionsHeldMax: 1024,
  // The adaptive probe interval stays within these bounds (Nacos adapts within 0.5-5 s).
  probeIntervalMsMin: 2500,
  probeIntervalMsMax: 10_000,
  // Consecutive failures (or successes) before a health flip is committed, as Nacos's checkTimes.
  healthFlipProbes: 3,
  // Health flips committed in one log entry: a flip is ~200 bytes, so 1000 stay far below entryBytesMax.
  healthFlipsPerEntryMax: 1000,

  // --- AP path: ephemeral instances (Nacos's defaults) ---
  beatIntervalMs: 5000,
  // Unhealthy after three missed beats.
  unhealthyAfterMs: 15_000,
  // Removed after six missed beats.
  removeAfterMs: 30_000,
  // Changes are merged for this long before replication (Nacos 2.x: 1000 ms). 20 ms still merges a burst of
  // registrations into one message per peer (a batch is one gRPC call, not one HTTP request per key as in Nacos),
  // and keeps a change's way to subscribers on other members within the push target (p99 under 100 ms; bench/push.ts
  // measured a 231 ms p99 at 200 ms). The flush timer costs nothing when nothing is queued.
  distroSyncDelayMs: 20,
  // Services per Distro sync message to one peer (Nacos 1.4's batchSyncKeyCount); a message also obeys
  // distroMessageBytesMax and distroMessageEntriesMax, so a big service is split over several messages.
  distroSyncBatchMax: 1000,
  // Checksums are exchanged this often; a missed sync is repaired within one period.
  distroVerifyIntervalMs: 5000,
  // Members heartbeat each other on the peer port this often (not through Raft, so it works in a partition; Nacos
  // reports every 2 s).
  distroHeartbeatIntervalMs: 1000,
  // A member whose heartbeats fail this many times in a row (or that refuses connections) is down for Distro
  // (Nacos: 3 failures, "connection refused" at once), so a dead member loses its services within ~3-4 s.
  distroHeartbeatMissesMax: 3,
  // One Distro peer call (heartbeat, sync, verify, pull, forward): Nacos's 2 s proxy timeout; a forwarded write
  // that hits it is retried once at the recomputed responsible member, still well inside requestTimeoutMs.
  distroPeerTimeoutMs: 2000,
  // A forwarded batch (writes, beats) older than this by the receiver's clock is refused, not applied: its sender may
  // have given up on it and applied the writes elsewhere, and a copy applied later would take a newer version than
  // the client's next write (a paused member woken 7 s later re-registered a deregistered instance: jepsen-like D6,
  // seed 42001). The sender waits until this plus distroForwardSkewMs has passed since a batch that may have been
  // delivered left before it retries the writes elsewhere or answers. docs/ap.md "Forwarding".
  distroForwardFenceMs: 1500,
  // The clock difference between members the fence tolerates: a receiver whose steady clock is behind the sender's
  // by more could still apply a late batch up to that much after the sender moved on. Fence + skew = the peer
  // timeout, so a timed-out forward never waits; a receiver ahead by less than ~1.4 s still takes fresh batches (the
  // steady clock slews 0.5 % after a step, so members drift apart by at most 5 ms a second under clock faults).
  distroForwardSkewMs: 500,
  // Estimated encoded bytes of one Distro message: half the gRPC receive bound, so the estimate may err by 2x.
  distroMessageBytesMax: 2 * MiB,
  // Instance entries (live or tombstones) in one Distro message: bounds the receiver's decoding work per message.
  distroMessageEntriesMax: 20_000,
  // A tombstone (a versioned deregistration) is kept this long, so that no stale copy of the instance can come back:
  // at least removeAfterMs (a member that still holds it live has removed it by then) plus two verify rounds.
  distroTombstoneRetentionMs: 60_000,
  // Tombstones per member: churn of 3 000 deregistrations a second over a full retention period; beyond it the
  // oldest are dropped early and counted (cairn_ap_tombstones_dropped_total).
  distroTombstonesMax: 200_000,
  // The responsible member scans for expired instances this often, at most distroExpiryScanEntriesMax entries per
  // scan (a slice; the next scan resumes there), so 100 000 instances are all looked at every 2.5 s and one scan
  // stays within a few milliseconds (measured ~8 ms per 20 000 entries on the 2-core test machine).
  distroExpiryTickMs: 500,
  distroExpiryScanEntriesMax: 20_000,
  // A starting member asks each peer in turn for a full snapshot, at most this many rounds; it refuses reads of
  // ephemeral instances meanwhile (docs/ap.md "Start-up"), then serves what it has and relies on verify afterwards.
  // Nacos retries every 30 s; we give up sooner, so that a member whose peers answer errors serves within ~20 s.
  distroSnapshotRetriesMax: 10,
  // Shared, frozen answers to beats, one per distinct client beat interval (src/ap/distro.ts, distro-codec.ts): a
  // beat's answer allocates nothing. Intervals come from clients' metadata, so the caches are bounded: beyond it an
  // answer is built per beat (no error).
  beatAnswersCachedMax: 1024,
  // Items one log line names (a closed session's kept instances, a peer message's dropped items); the rest are
  // counted in the line.
  logItemsNamedMax: 16,
  // Characters of a peer's unchecked text (a service key part, a refusal reason) in a log line or a relayed answer.
  logPeerTextCharsMax: 512,
  distroSnapshotRetryDelayMs: 2000,
  // One snapshot transfer (a stream of chunks); a peer that takes longer is abandoned for the next one.
  distroSnapshotTimeoutMs: 30_000,
  // A session (gRPC Session stream) silent this long is closed and its instances removed; clients keepAlive every
  // 5 s (Nacos 2's connection check is 20 s).
  distroSessionTimeoutMs: 20_000,
  // Open sessions per member, and instances one session may hold: bounds the renewal work. More: CAIRN_SESSIONS_EXCEEDED, CAIRN_SESSION_INSTANCES_EXCEEDED.
  distroSessionsMax: 100_000,
  distroSessionInstancesMax: 10_000,
  // Writes and beats a non-responsible member forwards while a ForwardBatch call to that peer is in flight wait in a
  // per-peer queue for it to settle, at most this long, so that one call carries many of them (bench/README.md
  // "Ephemeral beats at scale": one unary call per beat cost more CPU in HTTP/2 framing and writev than the beat
  // itself); with no call in flight a request leaves at once. A batch also leaves once it holds
  // distroForwardBatchEntriesMax requests or ~distroMessageBytesMax estimated bytes.
  distroForwardBatchDelayMs: 5,
  // Requests in one ForwardBatch call: bounds the receiver's decoding and applying work per call (~1000 beats take
  // a few ms to apply) and what one failed call sends back to the retry path.
  distroForwardBatchEntriesMax: 1000,
  // Forwarded requests queued or in flight to one peer: 20 000 beats/s spread over a cluster put ~2 200/s on one
  // member->peer pair, so a peer stalled for a whole distroPeerTimeoutMs leaves ~4 400 pending; beyond the bound a
  // request is refused at once with CAIRN_DISTRO_UNAVAILABLE (retryable; counted as forwards_total{result=overflow}).
  distroForwardPendingMax: 20_000,
  // Largest preserved.heart.beat.interval / .timeout / preserved.ip.delete.timeout accepted (one day).
  preservedTimeoutMsMax: 86_400_000,

  // --- Subscriptions and pushes ---
  // Subscribers (gRPC streams plus UDP push clients) of one service: bounds the fan-out of one change.
  // More: CAIRN_SUBSCRIBERS_PER_SERVICE_EXCEEDED.
  subscribersPerServiceMax: 10_000,
  // gRPC Subscribe streams of the whole member, over every service and connection: each holds ~10 KB (HTTP/2 stream
  // state, its filter and its pending snapshot; measured in session 31's audit), so 50 000 is ~0.5 GB, and a client
  // opening streams to made-up services on many connections could otherwise exhaust the member. UDP subscribers have
  // their own member-wide bound (udpPushTargetsMax). More: CAIRN_SUBSCRIBERS_EXCEEDED (retryable: subscribers leave).
  grpcSubscribersMax: 50_000,
  // Calls one client connection to the gRPC port may have open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS):
  // further calls on it wait for a free stream (docs/grpc.md "Calls per connection").
  grpcStreamsPerConnectionMax: 1000,
  // Open connections to the client gRPC port (src/replica/capped-grpc-server.ts): a client (a Nacos 2-style SDK, a
  // sidecar, `cairn watch`) holds one channel, one HTTP/2 connection, to one member, and when a member goes away its
  // clients move to the others, so thousands per member are normal; the same bound as the HTTP port's. An idle
  // connection costs the member ~17 KB (2000 idle HTTP/2 sessions added 33 MB of RSS, session 32), so a full port is
  // ~0.3 GB and, with the HTTP port's, ~33 000 file descriptors (Node raises its soft limit to the hard one; give the
  // service LimitNOFILE=65536 or more). Beyond it a new connection is closed at once, before any byte is read, and
  // counted (cairn_grpc_connections_refused_total); a warn line says how many, at most once per
  // connectionRefusalLogIntervalMs. Calls on the connections already open go on.
  grpcConnectionsMax: 16_384,
  // gRPC health Watch streams of a member (a few per load balancer or prober is typical): beyond it RESOURCE_EXHAUSTED.
  healthWatchersMax: 1024,
  // A resumed Subscribe waits at most this long for this member to apply up to the client's min_applied_index
  // before it answers CAIRN_MEMBER_BEHIND (a member cut off from the leader may never catch up; the client goes on
  // at another member). Two election timeouts and a snapshot install fit in it.
  subscribeCatchUpMsMax: 10_000,
  // Resumed Subscribe calls waiting at once for this member to catch up (each polls every 20 ms for up to
  // subscribeCatchUpMsMax): a member behind is rare and brief, but a crowd of resumes would make the polling a load
  // of its own. Beyond it a resume that must wait is answered CAIRN_MEMBER_BEHIND at once: go to another member.
  subscribeCatchUpWaitersMax: 1024,
  // A resume's after_revision may stand at most this far ahead of this member's clock (revisions count microseconds
  // of the wall clock from a member's start, and grow by one per push, far slower): beyond it no member can have
  // issued it, and accepting it would lift the member's one counter for every subscriber (to 2^52, past which no
  // subscriber could resume: CAIRN_INVALID_ARGUMENT). A day covers any clock offset between members.
  subscribeRevisionAheadMsMax: 86_400_000,
  // Pushes queued to one subscriber: a newer snapshot of a service supersedes a queued one; beyond the bound the
  // stream is closed with its last revision so the client resumes (never an unbounded queue for a slow reader).
  pushQueueMessagesMax: 256,
  // A service is pushed at most once per this window: a change after a quiet window goes at once, changes within
  // the window after a push are merged into one push at its end (Nacos delays every push 1000 ms).
  pushMergeWindowMs: 20,
  // The window scales with the service's subscribers: full from this many on, proportionally shorter below, so a
  // service with few subscribers is pushed on every change (1 subscriber: a 0.3 ms window) while the snapshots
  // offered per service stay under max(this, subscribers) per window.
  pushMergeFullSubscribers: 64,
  // UDP push acknowledgement timeout and retries, as Nacos (10 s, 1 retry); clients also poll.
  udpPushAckTimeoutMs: 10_000,
  udpPushRetriesMax: 1,
  // The Nacos clients' receive buffer (64 KiB); a larger (gzipped) push is not sent and clients rely on polling.
  udpPacketBytesMax: 64 * KiB,
  // UDP push targets of the whole member (each is one (service, clusters, address, port) a v1 client listed with a
  // udpPort): bounds the target table; beyond it a list still answers but registers no target (counted), and the
  // client relies on polling. Per service the bound is subscribersPerServiceMax, shared with gRPC subscribers.
  udpPushTargetsMax: 100_000,
  // A UDP push target expires this long after its last list with udpPort (Nacos's pushCacheMillis zombie rule);
  // clients poll every cacheMillis (3 s), so a live client refreshes it at least three times per period.
  udpPushTargetExpiryMs: 10_000,
  // A gRPC subscriber whose transport has not taken a snapshot for this long while a newer one waits (the client
  // does not read) is cut off with CAIRN_SUBSCRIBER_TOO_SLOW, so a dead reader cannot pin a stream and its buffers.
  pushStallMsMax: 30_000,
  // Session requests read but not yet answered on one Session stream: beyond it the member stops reading the stream
  // (HTTP/2 flow control pushes back on the client) until answers catch up; never an unbounded queue.
  sessionRequestsPendingMax: 64,
  // --- Read caches ---
  // Memoized instance-list answers (selection + checksum, and on the gRPC port the encoded instances), one per
  // (service, clusters filter, healthyOnly) a client asked for. Lists are read far more often than services change,
  // so a hit saves the MD5 over every instance and the protobuf encoding (bench/README.md "Hot path work"). 4096
  // entries cover every service of a typical deployment with a filter or two; beyond it the least recently listed
  // is recomputed on its next read (drop, no error).
  listCacheEntriesMax: 4096,
  // Instance references the list cache may hold (its inputs and answers counted): an entry pins the arrays it was
  // computed from, so this also bounds what stale entries keep alive. 200k references are ~2 MB of pointers; the
  // encoded gRPC chunks that live as long as the answers they belong to are at most ~400 bytes per listed instance
  // (~80 MB if all 200k were listed over gRPC, against ~3 KB per instance the registry itself holds).
  listCacheInstancesMax: 200_000,
  // The intern table (src/naming/intern.ts): one copy of the short strings instances repeat (namespaces, groups,
  // clusters, common metadata keys and values). A direct-mapped table of internSlots strings (a power of two) of at
  // most internCharsMax characters each, ~150 KB at most; a collision or a longer string costs a copy, never an error.
  internSlots: 4096,
  internCharsMax: 32,
});

/** LimitRelation is one relation between limits: its name is the inequality it asserts, its reason why. */
export interface LimitRelation {
  readonly name: string;
  readonly reason: string;
  readonly holds: (l: Limits) => boolean;
}

/** limitRelations lists every relation assertLimitRelations checks. */
export const limitRelations: readonly LimitRelation[] = Object.freeze([
  // Raft timing (Raft §5.6: broadcastTime << electionTimeout).
  { name: 'heartbeatTicks < electionTicks', reason: 'a heartbeat arrives before any election timeout', holds: (l) => l.heartbeatTicks < l.electionTicks },
  { name: 'heartbeatTicks >= 1', reason: 'the leader heartbeats at least every tick', holds: (l) => l.heartbeatTicks >= 1 },
  { name: '2 * electionTicks * raftTickMs < requestTimeoutMs', reason: 'a request outlives a full election', holds: (l) => 2 * l.electionTicks * l.raftTickMs < l.requestTimeoutMs },
  { name: 'memberCatchUpMs >= requestTimeoutMs', reason: 'a learner gets at least a request timeout to catch up', holds: (l) => l.memberCatchUpMs >= l.requestTimeoutMs },
  // Raft sizes.
  { name: '1 <= forwardBatchRequestsMax <= proposalsPendingMax', reason: 'a leader can take a whole forwarded batch', holds: (l) => l.forwardBatchRequestsMax >= 1 && l.forwardBatchRequestsMax <= l.proposalsPendingMax },
  { name: 'messageBytesMax >= entryBytesMax', reason: 'the largest entry fits in one AppendRequest', holds: (l) => l.messageBytesMax >= l.entryBytesMax },
  { name: 'inflightBytesMax >= messageBytesMax', reason: 'a full AppendRequest can always be in flight', holds: (l) => l.inflightBytesMax >= l.messageBytesMax },
  { name: 'uncommittedBytesMax >= entryBytesMax', reason: 'an idle leader accepts the largest entry', holds: (l) => l.uncommittedBytesMax >= l.entryBytesMax },
  { name: 'uncommittedBytesMax >= messageBytesMax', reason: 'a leader can fill one AppendRequest; the Raft core asserts it', holds: (l) => l.uncommittedBytesMax >= l.messageBytesMax },
  { name: 'committedBytesPerReadyMax >= messageBytesMax', reason: 'applying keeps up with one AppendRequest', holds: (l) => l.committedBytesPerReadyMax >= l.messageBytesMax },
  { name: 'snapshotChunkBytes <= messageBytesMax', reason: 'a snapshot chunk is no larger than an append', holds: (l) => l.snapshotChunkBytes <= l.messageBytesMax },
  { name: 'stallCheckMs * 4 <= stallThresholdMs', reason: 'a timer merely late by a few periods is not a stall', holds: (l) => l.stallCheckMs * 4 <= l.stallThresholdMs },
  { name: 'stallGraceMsMax >= stallGraceMs', reason: 'the longest grace is no shorter than the least', holds: (l) => l.stallGraceMsMax >= l.stallGraceMs },
  { name: 'stallGraceMs > stallCheckMs', reason: 'the grace covers the loop turns after a stall that read what was queued', holds: (l) => l.stallGraceMs > l.stallCheckMs },
  { name: 'httpConnectionsCheckMs < requestReceiveMsMax', reason: 'a late request is refused within a few checks of the bound', holds: (l) => l.httpConnectionsCheckMs < l.requestReceiveMsMax },
  { name: 'internSlots is a power of two', reason: 'the intern table picks a slot by masking a hash', holds: (l) => l.internSlots > 0 && (l.internSlots & (l.internSlots - 1)) === 0 },
  { name: 'requestBodyBytesMax < entryBytesMax', reason: 'an accepted request body always fits one entry with its header', holds: (l) => l.requestBodyBytesMax < l.entryBytesMax },
  // Transport.
  { name: 'peerMessageBytesMax >= 2 * messageBytesMax', reason: 'room for framing and per-entry headers', holds: (l) => l.peerMessageBytesMax >= 2 * l.messageBytesMax },
  { name: 'peerMessageBytesMax >= 2 * snapshotChunkBytes', reason: 'room for a chunk and its header', holds: (l) => l.peerMessageBytesMax >= 2 * l.snapshotChunkBytes },
  { name: 'peerSendQueueMessagesMax > inflightMessagesMax', reason: 'the queue holds a full pipeline plus heartbeats', holds: (l) => l.peerSendQueueMessagesMax > l.inflightMessagesMax },
  { name: 'peerSendQueueBytesMax >= inflightBytesMax + snapshotChunkBytes', reason: 'the queue holds a full pipeline', holds: (l) => l.peerSendQueueBytesMax >= l.inflightBytesMax + l.snapshotChunkBytes },
  { name: 'probeConnectionsHeldMax >= probeConcurrencyMax', reason: 'every probe in flight may keep its connection', holds: (l) => l.probeConnectionsHeldMax >= l.probeConcurrencyMax },
  { name: 'peerConnectionsMax >= 4 * backupMembersMax', reason: 'every other member of the largest cluster opens its two peer connections with room to replace each', holds: (l) => l.peerConnectionsMax >= 4 * l.backupMembersMax },
  { name: '1 <= peerContactSendersPendingMax <= peerContactsMax', reason: 'a pending first contact is recorded within the bound', holds: (l) => l.peerContactSendersPendingMax >= 1 && l.peerContactSendersPendingMax <= l.peerContactsMax },
  // Naming.
  { name: 'metadataCharsMax * 3 + serviceNameCharsMax * 3 < entryBytesMax', reason: 'a registration fits one entry', holds: (l) => 3 * (l.metadataCharsMax + l.serviceNameCharsMax) < l.entryBytesMax },
  { name: '3 * (healthCheckerCharsMax + metadataCharsMax + serviceNameCharsMax) < entryBytesMax', reason: 'a cluster configuration fits one entry', holds: (l) => 3 * (l.healthCheckerCharsMax + l.metadataCharsMax + l.serviceNameCharsMax) < l.entryBytesMax },
  { name: 'requestResultsBytesMax >= 2 * entryBytesMax', reason: 'the request table remembers at least the results of the two largest writes', holds: (l) => l.requestResultsBytesMax >= 2 * l.entryBytesMax },
  { name: 'listCacheInstancesMax >= 2 * instancesPerServiceMax', reason: 'the list of the largest service (its instances and the answer) can be memoized', holds: (l) => l.listCacheInstancesMax >= 2 * l.instancesPerServiceMax },
  // Health checks.
  { name: 'probeIntervalMsMin <= probeIntervalMsMax', reason: 'the adaptive interval has a non-empty range', holds: (l) => l.probeIntervalMsMin <= l.probeIntervalMsMax },
  { name: 'probeTimeoutMs < probeIntervalMsMin', reason: 'probes of one target never overlap', holds: (l) => l.probeTimeoutMs < l.probeIntervalMsMin },
  { name: 'healthFlipProbes >= 1', reason: 'a flip needs at least one probe', holds: (l) => l.healthFlipProbes >= 1 },
  { name: 'healthFlipsPerEntryMax * 256 <= entryBytesMax', reason: 'a batch of flips fits one entry', holds: (l) => l.healthFlipsPerEntryMax * 256 <= l.entryBytesMax },
  // AP path.
  { name: 'beatIntervalMs < unhealthyAfterMs', reason: 'a live client beats before it is marked unhealthy', holds: (l) => l.beatIntervalMs < l.unhealthyAfterMs },
  { name: 'unhealthyAfterMs < removeAfterMs', reason: 'an instance is unhealthy before it is removed', holds: (l) => l.unhealthyAfterMs < l.removeAfterMs },
  { name: 'distroSyncDelayMs < beatIntervalMs', reason: 'a registration reaches peers before its first beat is due', holds: (l) => l.distroSyncDelayMs < l.beatIntervalMs },
  { name: 'distroVerifyIntervalMs < removeAfterMs', reason: 'a missed sync is repaired before the instance could expire', holds: (l) => l.distroVerifyIntervalMs < l.removeAfterMs },
  { name: 'distroTombstoneRetentionMs >= removeAfterMs + 2 * distroVerifyIntervalMs', reason: 'a deregistration outlives every stale copy, so nothing resurrects', holds: (l) => l.distroTombstoneRetentionMs >= l.removeAfterMs + 2 * l.distroVerifyIntervalMs },
  { name: 'distroPeerTimeoutMs * 2 < requestTimeoutMs', reason: 'a forwarded write and its one retry end within a request', holds: (l) => 2 * l.distroPeerTimeoutMs < l.requestTimeoutMs },
  { name: 'distroForwardFenceMs + distroForwardSkewMs <= distroPeerTimeoutMs', reason: 'a forward that timed out needs no wait for its fence, so a forward and its retry still end within a request', holds: (l) => l.distroForwardFenceMs + l.distroForwardSkewMs <= l.distroPeerTimeoutMs },
  { name: '2 * (distroForwardBatchDelayMs + distroPeerTimeoutMs) < requestTimeoutMs', reason: 'a batched forward and its one retry, each queued a window, end within a request', holds: (l) => 2 * (l.distroForwardBatchDelayMs + l.distroPeerTimeoutMs) < l.requestTimeoutMs },
  { name: 'distroForwardBatchEntriesMax <= distroForwardPendingMax', reason: 'a full batch fits the per-peer queue', holds: (l) => l.distroForwardBatchEntriesMax <= l.distroForwardPendingMax },
  { name: 'distroForwardBatchEntriesMax <= distroMessageEntriesMax', reason: 'a batch is no more work for the receiver than one Distro message', holds: (l) => l.distroForwardBatchEntriesMax <= l.distroMessageEntriesMax },
  { name: 'distroMessageBytesMax * 2 <= peerMessageBytesMax', reason: 'a Distro message fits the peer port even if its size estimate is off by 2x', holds: (l) => 2 * l.distroMessageBytesMax <= l.peerMessageBytesMax },
  { name: 'distroMessageEntriesMax >= instancesPerServiceMax', reason: 'the live instances of one service fit one message by count', holds: (l) => l.distroMessageEntriesMax >= l.instancesPerServiceMax },
  { name: 'distroHeartbeatIntervalMs * distroHeartbeatMissesMax < unhealthyAfterMs', reason: 'a dead member is noticed before the instances it kept would turn unhealthy', holds: (l) => l.distroHeartbeatIntervalMs * l.distroHeartbeatMissesMax < l.unhealthyAfterMs },
  { name: 'beatIntervalMs < distroSessionTimeoutMs', reason: 'a session renews its instances before it could time out', holds: (l) => l.beatIntervalMs < l.distroSessionTimeoutMs },
  { name: 'removeAfterMs <= preservedTimeoutMsMax', reason: 'the default timeouts are valid overrides', holds: (l) => l.removeAfterMs <= l.preservedTimeoutMsMax },
  // Pushes.
  { name: 'pushMergeWindowMs < requestTimeoutMs', reason: 'a push is never held longer than a request', holds: (l) => l.pushMergeWindowMs < l.requestTimeoutMs },
  { name: 'pushMergeFullSubscribers >= 1', reason: 'the merge window is a fraction of pushMergeWindowMs, never more', holds: (l) => l.pushMergeFullSubscribers >= 1 },
  { name: 'pushMergeWindowMs < pushStallMsMax', reason: 'a subscriber is never cut off for a push that was merely being merged', holds: (l) => l.pushMergeWindowMs < l.pushStallMsMax },
  { name: 'subscribersPerServiceMax <= grpcSubscribersMax', reason: 'one service can fill its subscriber bound with gRPC streams', holds: (l) => l.subscribersPerServiceMax <= l.grpcSubscribersMax },
  { name: 'subscribersPerServiceMax <= udpPushTargetsMax', reason: 'one service can fill its subscriber bound with UDP targets', holds: (l) => l.subscribersPerServiceMax <= l.udpPushTargetsMax },
  { name: 'udpPushAckTimeoutMs * (udpPushRetriesMax + 1) <= removeAfterMs', reason: 'a push gives up before its data expires', holds: (l) => l.udpPushAckTimeoutMs * (l.udpPushRetriesMax + 1) <= l.removeAfterMs },
]);

/** LimitRelationError says which relations between limits are broken; `broken` describes each. */
export class LimitRelationError extends Error {
  override readonly name = 'LimitRelationError';
  readonly broken: readonly string[];
  constructor(broken: readonly string[]) {
    super(`limits break ${broken.length} relation(s): ${broken.join('; ')}`);
    this.broken = broken;
  }
}

/**
 * brokenLimitRelations describes what `l` breaks: "<relation> (<reason>)" for each broken relation and
 * "<limit> is a positive integer (got <value>)" for each limit that is not one.
 */
export function brokenLimitRelations(l: Limits = limits): string[] {
  const broken: string[] = [];
  for (const [key, value] of Object.entries(l)) {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
      broken.push(`${key} is a positive integer (got ${String(value)})`);
    }
  }
  for (const relation of limitRelations) {
    if (!relation.holds(l)) broken.push(`${relation.name} (${relation.reason})`);
  }
  return broken;
}

/** assertLimitRelations throws a LimitRelationError naming every broken relation; the member calls it at start-up. */
export function assertLimitRelations(l: Limits = limits): void {
  const broken = brokenLimitRelations(l);
  if (broken.length > 0) throw new LimitRelationError(broken);
}
