import { EventEmitter } from 'node:events';
import { systemClock, type Clock } from '../clock.js';
import type { EventBus, EventContext } from '../events/bus.js';
import { toDecisionEvent } from '../policy/decision.js';
import { describeTransferRequest, type TransferDecision } from '../policy/transfer.js';
import type { Permission } from './enforcement.js';

/** An `ask` decision waiting for an answer. */
export interface TransferQuestion {
  /** Unique within the asker. */
  readonly id: number;
  readonly decision: TransferDecision;
  /** The transfer in words: `clipboard guest-to-host (text)`. */
  readonly subject: string;
  /** When an unanswered question is denied (the asker's clock, ms since the epoch). */
  readonly deadline: number;
  /** Answers it; the first answer counts, later ones are ignored. */
  answer(permission: Permission): void;
}

/** Options of a {@link TransferAsker}. */
export interface TransferAskerOptions {
  /** How long an answer may take before the transfer is denied (default 60 s). */
  readonly timeoutMs?: number;
  readonly clock?: Clock;
  /** Where each answered (or timed-out) question is published as `policy.decision`. */
  readonly events?: EventBus;
  readonly context?: EventContext;
}

/**
 * Turns `ask` decisions into questions for the integrator: each is emitted as an `ask` event
 * carrying a callback to answer it, and denied when no answer comes within the timeout (or no
 * one listens). Every outcome is published as a `policy.decision` event saying who decided.
 *
 * @example
 * ```ts
 * const asker = new TransferAsker({ timeoutMs: 30_000, events });
 * asker.on('ask', (q) => q.answer(window.confirm(`Allow ${q.subject}?`) ? 'allow' : 'deny'));
 * const { permissions } = await resolveTransferPolicy(policy, asker.ask);
 * ```
 */
export class TransferAsker extends EventEmitter<{ ask: [TransferQuestion] }> {
  readonly timeoutMs: number;
  readonly #clock: Clock;
  readonly #events: EventBus | undefined;
  readonly #context: EventContext;
  #next = 1;

  constructor(options: TransferAskerOptions = {}) {
    super();
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.#clock = options.clock ?? systemClock;
    this.#events = options.events;
    this.#context = options.context ?? {};
  }

  /** Asks about one decision; resolves with the answer, or `deny` after the timeout. */
  readonly ask = (decision: TransferDecision): Promise<Permission> => {
    const subject = describeTransferRequest(decision.request);
    if (this.listenerCount('ask') === 0) {
      return Promise.resolve(this.#publish(decision, 'deny', `${decision.reason}; no one was there to ask: deny`));
    }
    return new Promise<Permission>((resolve) => {
      const abort = new AbortController();
      let done = false;
      const finish = (p: Permission, why: string): void => {
        if (done) return;
        done = true;
        abort.abort();
        resolve(this.#publish(decision, p, why));
      };
      this.#clock.sleep(this.timeoutMs, abort.signal).then(
        () => finish('deny', `${decision.reason}; no answer within ${this.timeoutMs} ms: deny`),
        () => undefined,
      );
      const question: TransferQuestion = {
        id: this.#next++,
        decision,
        subject,
        deadline: this.#clock.now() + this.timeoutMs,
        answer: (p) => finish(p === 'allow' ? 'allow' : 'deny', `${decision.reason}; the user answered ${p}`),
      };
      this.emit('ask', question);
    });
  };

  #publish(decision: TransferDecision, permission: Permission, reason: string): Permission {
    this.#events?.publish(
      'policy.decision',
      { ...toDecisionEvent(decision), outcome: permission, reason },
      this.#context,
    );
    return permission;
  }
}
