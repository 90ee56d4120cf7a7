// version: the versions of ephemeral instance entries (docs/ap.md "Versions and tombstones"). A version is a hybrid
// logical clock reading: the writer's wall-clock milliseconds, a counter that orders writes within one millisecond
// (or while the wall clock stands behind a version already seen), and the writing member's id as the final
// tie-break. Versions are totally ordered and every write gets a version greater than any the writer has seen, so
// last-writer-wins merges agree on every member whatever order the copies arrive in.
//
// Pure: the wall clock is passed in.

/** Version is one hybrid-logical-clock reading. Invariant: wallMs and counter are non-negative safe integers. */
export interface Version {
  readonly wallMs: number;
  readonly counter: number;
  /** member is the writer's id: two members never produce the same version. */
  readonly member: string;
}

/** compareVersions orders versions: wall time, then counter, then member id; 0 only for equal versions. */
export function compareVersions(a: Version, b: Version): number {
  if (a.wallMs !== b.wallMs) return a.wallMs < b.wallMs ? -1 : 1;
  if (a.counter !== b.counter) return a.counter < b.counter ? -1 : 1;
  if (a.member === b.member) return 0;
  return a.member < b.member ? -1 : 1;
}

/** HybridClock issues versions for one member: each is greater than every version it issued or observed. */
export class HybridClock {
  private wallMs = 0;
  private counter = 0;

  constructor(private readonly member: string) {}

  /** tick returns a new version at wall time `nowMs`. */
  tick(nowMs: number): Version {
    if (nowMs > this.wallMs) {
      this.wallMs = nowMs;
      this.counter = 0;
    } else {
      this.counter++;
    }
    return { wallMs: this.wallMs, counter: this.counter, member: this.member };
  }

  /** observe moves the clock past a version seen from elsewhere, so the next tick orders after it. */
  observe(version: Version): void {
    if (version.wallMs > this.wallMs) {
      this.wallMs = version.wallMs;
      this.counter = version.counter;
    } else if (version.wallMs === this.wallMs && version.counter > this.counter) {
      this.counter = version.counter;
    }
  }
}

/**
 * fnv1a32 hashes a string (its UTF-16 code units) with 32-bit FNV-1a from `seed`; two seeds give two independent
 * 32-bit hashes, which the store combines into 64-bit checksums and the responsibility hash uses for placement.
 */
export function fnv1a32(text: string, seed = 0x811c9dc5): number {
  let hash = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}
