// Every maximum of the simulator, with its reason (STYLE.md §3). Overflow of any of them fails the seed loudly
// (SimBoundExceeded, a crash-class failure) rather than letting a runaway run eat the test budget.

/** simEventsPerSeedMax bounds the events of one seed; a clean seed needs a few tens of thousands, so more is a runaway. */
export const simEventsPerSeedMax = 1_000_000;

/** simQueueLengthMax bounds the pending events; 5 nodes with bounded in-flight messages stay far below it. */
export const simQueueLengthMax = 100_000;

/** pausedInboxLengthMax bounds the inputs held for a paused node; a pause is short, so more means a message storm. */
export const pausedInboxLengthMax = 20_000;

/** historyOpsPerKeyMax bounds client operations per key so the linearizability checker never runs out of budget (PEERS.md §3). */
export const historyOpsPerKeyMax = 120;

/**
 * historyUnknownPerKeyMax retires a key once this many of its writes ended 'info': an unknown write stays concurrent
 * with everything after it, and the checker's search grows about 2^n with n of them (measured: 21 unknown writes
 * among 37 operations exhausted 2,000,000 steps).
 */
export const historyUnknownPerKeyMax = 6;

/** checkerStepsMax is the linearizability checker's search budget per key; exhausting it is a failure, never a pass. */
export const checkerStepsMax = 2_000_000;

/** fullLogScanEventsInterval is how many events pass between full scans of every in-memory log (the cheap checks run after every event). */
export const fullLogScanEventsInterval = 256;

/** traceTailLinesMax bounds the trace lines kept for a failure report. */
export const traceTailLinesMax = 120;

/** nodeIdsMax is the size of the id universe: initial members plus spares for membership changes. */
export const nodeIdsMax = 5;

/** livenessBoundMs is how long, in simulated time, a healed cluster may take to elect a leader and commit a write everywhere. */
export const livenessBoundMs = 10_000;

/** livenessProbeIntervalMs is how often the liveness phase checks progress and retries its probe write. */
export const livenessProbeIntervalMs = 50;
