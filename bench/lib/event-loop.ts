// event-loop: how long a piece of work takes and the longest the event loop went without running a 1 ms timer
// meanwhile (bench/snapshot-save.ts, bench/restore.ts).

/** LoopMeasure is a work's wall time and the longest gap between two ticks of a 1 ms timer while it ran, in ms. */
export interface LoopMeasure {
  readonly ms: number;
  readonly longestGapMs: number;
}

const settleMs = 20;

/** measureLoop runs `work` with a 1 ms probe timer and reports its time and the probe's longest gap. */
export async function measureLoop(work: () => Promise<unknown> | unknown): Promise<LoopMeasure> {
  const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, settleMs));
  await settle();
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  try {
    const started = performance.now();
    await work();
    const ms = performance.now() - started;
    await settle();
    return { ms, longestGapMs: longest };
  } finally {
    clearInterval(timer);
  }
}
