import { HypervisorError, type TandemError } from '../errors.js';

/** Operations of the mock adapter, as named in its call log and fault injection. */
export type MockOperation =
  | 'probe'
  | 'list'
  | 'define'
  | 'redefine'
  | 'setNetwork'
  | 'state'
  | 'start'
  | 'stop'
  | 'suspend'
  | 'resume'
  | 'save'
  | 'restore'
  | 'destroy'
  | 'snapshot.create'
  | 'snapshot.list'
  | 'snapshot.revert'
  | 'snapshot.delete'
  | 'seamless.launch'
  | 'guestChannel.open'
  | 'diskEncryption.encrypt'
  | 'encryptedOverlays.create'
  | 'encryptedOverlays.discard'
  | 'encryptedOverlays.list';

/** One call the mock adapter received. */
export interface MockCall {
  readonly op: MockOperation;
  readonly vm?: string;
  /** The clock's time when the call arrived. */
  readonly at: number;
  readonly outcome: 'ok' | 'error';
  readonly error?: string;
}

interface PendingFailure {
  remaining: number;
  error: (op: MockOperation) => Error;
}

/**
 * Fault injection for the mock adapter: fail the next N calls of an operation, make an
 * operation slow. (Crashing a running VM is {@link MockAdapter.crash}.)
 */
export class MockFaults {
  readonly #failures = new Map<MockOperation, PendingFailure>();
  readonly #delays = new Map<MockOperation, number>();

  /** The next `count` calls of `op` throw (a retryable HypervisorError unless `error` makes another). */
  failNext(op: MockOperation, count = 1, error?: (op: MockOperation) => Error): this {
    this.#failures.set(op, {
      remaining: count,
      error:
        error ??
        ((o) =>
          new HypervisorError(`Injected failure of ${o}.`, { retryable: true, details: { injected: true, op: o } })),
    });
    return this;
  }

  /** Every call of `op` takes `ms` more milliseconds of the adapter's clock (0 removes it). */
  slow(op: MockOperation, ms: number): this {
    if (ms <= 0) this.#delays.delete(op);
    else this.#delays.set(op, ms);
    return this;
  }

  /** Removes every injected fault. */
  clear(): this {
    this.#failures.clear();
    this.#delays.clear();
    return this;
  }

  /** @internal */
  delayOf(op: MockOperation): number {
    return this.#delays.get(op) ?? 0;
  }

  /** @internal Returns the error to throw for this call, if one is injected. */
  take(op: MockOperation): Error | TandemError | undefined {
    const f = this.#failures.get(op);
    if (!f || f.remaining <= 0) return undefined;
    f.remaining -= 1;
    if (f.remaining === 0) this.#failures.delete(op);
    return f.error(op);
  }
}
