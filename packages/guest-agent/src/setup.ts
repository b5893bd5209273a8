import { GuestOperationError, type SetupStatus, type SetupStepParams, type SetupStepResult } from '@tandem/core/guest';
import type { AgentState } from './state.js';

/** Applies one step on this OS. Throws GuestOperationError with the OS's own message on failure. */
export interface SetupApplier {
  computerName(name: string, signal: AbortSignal): Promise<{ message: string; rebootRequired: boolean }>;
  network(
    params: Extract<SetupStepParams, { step: 'network' }>,
    signal: AbortSignal,
  ): Promise<{ message: string; rebootRequired: boolean }>;
  domainJoin(
    params: Extract<SetupStepParams, { step: 'domain-join' }>,
    signal: AbortSignal,
  ): Promise<{ message: string; rebootRequired: boolean }>;
  /** At start: apply a recorded computer name again, as the OS would from /etc/hostname. */
  reapply?(computerName: string): Promise<void>;
}

/**
 * First-time setup in the guest: runs each step once per VM instance and records it in the
 * state directory before answering, so a step the host asks for again after a reboot (or after
 * losing the answer) is `already-done`. A different instance (the image was cloned) starts over.
 */
export class GuestSetup {
  #queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly state: AgentState,
    readonly applier: SetupApplier,
  ) {}

  status(): SetupStatus {
    const s = this.state.load();
    return { ...(s.instance ? { instance: s.instance } : {}), completed: s.completed };
  }

  /** One step at a time: two hosts' requests (a retry racing the first) never interleave. */
  step(params: SetupStepParams, signal: AbortSignal): Promise<SetupStepResult> {
    const run = this.#queue.then(() => this.#step(params, signal));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #step(params: SetupStepParams, signal: AbortSignal): Promise<SetupStepResult> {
    let s = this.state.load();
    if (s.instance !== params.instance) s = { instance: params.instance, completed: [] };
    const done = s.completed.find((c) => c.step === params.step);
    if (done) return { step: params.step, status: 'already-done', message: done.message, rebootRequired: false };
    let outcome: { message: string; rebootRequired: boolean };
    switch (params.step) {
      case 'computer-name':
        outcome = await this.applier.computerName(params.computerName, signal);
        s.computerName = params.computerName;
        break;
      case 'network':
        outcome = await this.applier.network(params, signal);
        break;
      case 'domain-join':
        outcome = await this.applier.domainJoin(params, signal);
        break;
      default:
        throw new GuestOperationError('Unknown setup step.', 'unknown step');
    }
    s.completed.push({ step: params.step, at: new Date().toISOString(), message: outcome.message.slice(0, 4096) });
    this.state.save(s);
    return {
      step: params.step,
      status: 'done',
      message: outcome.message.slice(0, 4096),
      rebootRequired: outcome.rebootRequired,
    };
  }
}

/** A failure with the guest's own words, retryable unless said otherwise. */
export function guestFailure(what: string, guestMessage: string, code: string, retryable = true): GuestOperationError {
  const message = guestMessage.trim().slice(0, 4000) || what;
  return new GuestOperationError(message, message, { retryable, details: { guestCode: code, what } });
}
