/**
 * Runs tasks one at a time per key, in the order they were queued. Adapters that drive a
 * hypervisor through separate commands use it so that two calls on one VM never interleave
 * (two concurrent starts: one starts the VM, the other sees it running).
 *
 * @example
 * ```ts
 * const perVm = new KeyedSerializer();
 * await Promise.all([perVm.run('vm1', () => start('vm1')), perVm.run('vm1', () => start('vm1'))]);
 * ```
 */
export class KeyedSerializer {
  readonly #tails = new Map<string, Promise<unknown>>();

  /** Queues `task` behind the tasks already queued for `key`. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const next = previous.then(task, task);
    const tail = next.catch(() => undefined);
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return next;
  }

  /** Number of keys with queued or running tasks. */
  get size(): number {
    return this.#tails.size;
  }
}
