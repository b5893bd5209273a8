/**
 * Runs tasks one at a time per key, in call order. Adapters use it to serialize calls on one
 * VM; sessions use it to serialize their operations.
 *
 * @example
 * ```ts
 * const queue = new KeyedQueue();
 * await queue.run('vm-1', () => hypervisor.start('vm-1'));
 * ```
 */
export class KeyedQueue {
  readonly #tails = new Map<string, Promise<unknown>>();

  /** Runs `task` after every task queued earlier under `key` has settled. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }

  /** True while a task for `key` is queued or running. */
  busy(key: string): boolean {
    return this.#tails.has(key);
  }
}
