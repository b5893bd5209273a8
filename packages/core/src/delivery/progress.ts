import type { Clock } from '../clock.js';

/** Where a pull is. */
export type SyncPhase = 'metadata' | 'seeding' | 'fetching' | 'verifying' | 'installing' | 'done';

/** Progress of a pull. */
export interface SyncProgress {
  readonly workspace: string;
  readonly version: string;
  readonly phase: SyncPhase;
  /** Size of the image. */
  readonly bytesTotal: number;
  /** Image bytes already verified in the staging area when the pull (re)started. */
  readonly bytesResumed: number;
  /** Image bytes taken from local seeds (installed versions, seed files, runs of zeros). */
  readonly bytesFromSeeds: number;
  /** Bytes to fetch over the network (compressed). Known once seeding is done. */
  readonly bytesNeeded: number;
  /** Bytes fetched so far (compressed). */
  readonly bytesFetched: number;
  /** Fetch rate, bytes per second. */
  readonly bytesPerSecond: number;
  /** Estimated time left, or null while unknown. */
  readonly etaMs: number | null;
  /** Requests made to the repository. */
  readonly requests: number;
}

/** Accumulates counters and reports them at most every `intervalMs`. */
export class ProgressTracker {
  phase: SyncPhase = 'metadata';
  bytesTotal = 0;
  bytesResumed = 0;
  bytesFromSeeds = 0;
  bytesNeeded = 0;
  bytesFetched = 0;
  requests = 0;
  #fetchStart: number | undefined;
  #last = -Infinity;

  constructor(
    readonly workspace: string,
    public version: string,
    private readonly clock: Clock,
    private readonly emit: (p: SyncProgress) => void,
    private readonly intervalMs = 200,
  ) {}

  /** Marks the start of network fetching, for the rate. */
  startFetching(): void {
    this.phase = 'fetching';
    this.#fetchStart = this.clock.now();
  }

  snapshot(): SyncProgress {
    const elapsed = this.#fetchStart === undefined ? 0 : this.clock.now() - this.#fetchStart;
    const bytesPerSecond = elapsed > 0 ? Math.round((this.bytesFetched * 1000) / elapsed) : 0;
    const left = Math.max(0, this.bytesNeeded - this.bytesFetched);
    const etaMs = left === 0 ? 0 : bytesPerSecond > 0 ? Math.round((left * 1000) / bytesPerSecond) : null;
    return {
      workspace: this.workspace,
      version: this.version,
      phase: this.phase,
      bytesTotal: this.bytesTotal,
      bytesResumed: this.bytesResumed,
      bytesFromSeeds: this.bytesFromSeeds,
      bytesNeeded: this.bytesNeeded,
      bytesFetched: this.bytesFetched,
      bytesPerSecond,
      etaMs,
      requests: this.requests,
    };
  }

  /** Reports when the interval has passed, or always with `force`. */
  tick(force = false): void {
    const now = this.clock.now();
    if (!force && now - this.#last < this.intervalMs) return;
    this.#last = now;
    this.emit(this.snapshot());
  }
}
