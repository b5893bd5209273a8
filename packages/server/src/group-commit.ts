import { TandemError } from '@tandem/core';

// Taken when the module loads, so a test's fake timers never hold a request back.
const realSetImmediate = globalThis.setImmediate;

interface Waiting<I, R> {
  readonly item: I;
  readonly resolve: (result: R) => void;
  readonly reject: (err: unknown) => void;
}

/** What a {@link GroupCommit} writes with. */
export interface GroupCommitOptions<I, R> {
  /** Writes several items in one store write; resolves with one result per item, in order. */
  readonly many?: ((items: readonly I[]) => Promise<R[]>) | undefined;
  /** Writes one item (used when `many` is absent, for a group of one, and to isolate a bad item). */
  readonly one: (item: I) => Promise<R>;
  /** How many store writes may run at once; what arrives meanwhile joins the next. Default 2. */
  readonly inFlight?: number;
  /** The most weight (say, events) in one write. Default 5000. */
  readonly maxWeight?: number;
  /** An item's weight. Default 1. */
  readonly weigh?: (item: I) => number;
  /**
   * Items with the same key never share a write: a second one waits for the next group (say, two
   * check-ins of one device). Default: no key, any items may share.
   */
  readonly key?: ((item: I) => string) | undefined;
}

/**
 * Group commit across concurrent requests: the items (a check-in's events, its nonce, its state)
 * that arrive while the store is busy go to it in one write, and each request's promise resolves
 * with its own result only after that write is done, so nothing is acknowledged before it is
 * stored. A write that fails fails every request in it (each endpoint retries; ids keep the
 * retry from duplicating), except an invalid item, which fails only its own request: on
 * `TANDEM_INVALID_INPUT` the group is written again one item at a time.
 *
 * @example
 * ```ts
 * const events = new GroupCommit({ many: (g) => store.ingestEventGroups!(g), one: (rows) => store.ingestEvents(rows) });
 * const { inserted, duplicates } = await events.write(rows);
 * ```
 */
export class GroupCommit<I, R> {
  readonly #options: GroupCommitOptions<I, R>;
  readonly #inFlight: number;
  readonly #maxWeight: number;
  readonly #waiting: Waiting<I, R>[] = [];
  #running = 0;
  #scheduled = false;

  constructor(options: GroupCommitOptions<I, R>) {
    this.#options = options;
    this.#inFlight = Math.max(1, options.inFlight ?? 2);
    this.#maxWeight = Math.max(1, options.maxWeight ?? 5000);
  }

  /** Writes `item` with the next group; resolves with its result once the group is written. */
  write(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#waiting.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#running >= this.#inFlight || this.#waiting.length === 0) return;
    this.#scheduled = true;
    // After this turn's I/O callbacks, so the requests read in one turn share a write.
    realSetImmediate(() => {
      this.#scheduled = false;
      this.#start();
    });
  }

  #start(): void {
    const weigh = this.#options.weigh ?? (() => 1);
    const key = this.#options.key;
    while (this.#running < this.#inFlight && this.#waiting.length > 0) {
      let weight = 0;
      let n = 0;
      const keys = new Set<string>();
      while (n < this.#waiting.length) {
        const item = this.#waiting[n]!.item;
        const w = weigh(item);
        if (n > 0 && weight + w > this.#maxWeight) break;
        if (key) {
          const k = key(item);
          if (keys.has(k)) break;
          keys.add(k);
        }
        weight += w;
        n++;
      }
      const group = this.#waiting.splice(0, n);
      this.#running++;
      // A write that throws instead of rejecting its items (a store method failing before its
      // promise) still settles them: nothing of a group commit may reject unheard.
      void this.#write(group)
        .catch((err: unknown) => {
          for (const w of group) w.reject(err);
        })
        .finally(() => {
          this.#running--;
          this.#schedule();
        });
    }
  }

  async #write(group: Waiting<I, R>[]): Promise<void> {
    const { many, one } = this.#options;
    if (group.length > 1 && many) {
      try {
        const results = await many(group.map((w) => w.item));
        group.forEach((w, i) => w.resolve(results[i]!));
        return;
      } catch (err) {
        if (!TandemError.is(err, 'TANDEM_INVALID_INPUT')) {
          for (const w of group) w.reject(err);
          return;
        }
      }
    }
    await Promise.all(
      group.map((w) =>
        one(w.item).then(
          (r) => w.resolve(r),
          (e: unknown) => w.reject(e),
        ),
      ),
    );
  }
}
