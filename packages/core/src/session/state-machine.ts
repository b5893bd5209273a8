import type { VmState } from '../adapter/types.js';
import { InvalidStateError } from '../errors.js';

/** The states of a {@link Session}. */
export type SessionState = 'stopped' | 'starting' | 'running' | 'locked' | 'suspended' | 'stopping' | 'crashed';

/** What can be asked of a session. */
export type SessionOperation = 'start' | 'stop' | 'suspend' | 'resume' | 'lock' | 'unlock' | 'snapshot' | 'revert';

/**
 * The legal transitions: for each operation, the states it may start from, the transient
 * state while it runs (if any), and the state it ends in. `revert` ends in whatever state
 * the snapshot restores, so its end state is decided by the VM.
 */
export const SESSION_TRANSITIONS: Readonly<
  Record<SessionOperation, { from: readonly SessionState[]; via?: SessionState; to: SessionState | 'vm' | 'same' }>
> = {
  start: { from: ['stopped', 'crashed'], via: 'starting', to: 'running' },
  stop: { from: ['running', 'locked', 'suspended'], via: 'stopping', to: 'stopped' },
  suspend: { from: ['running', 'locked'], to: 'suspended' },
  resume: { from: ['suspended'], to: 'running' },
  lock: { from: ['running'], to: 'locked' },
  unlock: { from: ['locked'], to: 'running' },
  snapshot: { from: ['running', 'locked', 'suspended', 'stopped'], to: 'same' },
  revert: { from: ['running', 'suspended', 'stopped', 'crashed'], to: 'vm' },
};

/** Throws InvalidStateError (naming the current state) unless `operation` is legal in `state`. */
export function assertTransition(state: SessionState, operation: SessionOperation, subject = 'session'): void {
  const rule = SESSION_TRANSITIONS[operation];
  if (!rule.from.includes(state)) {
    throw new InvalidStateError(
      `Cannot ${operation} the ${subject}: it is ${state} (${operation} needs ${rule.from.join(', ')}).`,
      state,
      { details: { operation, allowed: rule.from } },
    );
  }
}

/** The session state that corresponds to a VM state (when attaching to an existing VM). */
export function sessionStateForVm(vm: VmState): SessionState {
  switch (vm) {
    case 'running':
      return 'running';
    case 'paused':
    case 'saved':
      return 'suspended';
    case 'crashed':
      return 'crashed';
    case 'starting':
      return 'starting';
    case 'stopping':
      return 'stopping';
    case 'stopped':
    case 'unknown':
      return 'stopped';
  }
}
