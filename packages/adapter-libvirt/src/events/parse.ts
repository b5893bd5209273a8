import type { VmState } from '@tandem/core';

/** One lifecycle event line of `virsh event --loop`. */
export interface LifecycleLine {
  readonly vm: string;
  /** `Started`, `Stopped`, `Suspended`, ... */
  readonly event: string;
  /** `Booted`, `Failed`, `Finished after guest request`, ... */
  readonly detail: string;
}

const EVENTS = 'Defined|Undefined|Started|Suspended|Resumed|Stopped|Shutdown|PMSuspended|Crashed';
// The name is matched greedily up to the last "': <Event>", so quotes inside a name are fine.
const LINE = new RegExp(
  `^(?:\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d+[+-]\\d{4}: )?event 'lifecycle' for domain '(.*)': (${EVENTS})(?: (.*))?$`,
  's',
);

/** Parses one line of `virsh event --event lifecycle` output; null for anything else. */
export function parseLifecycleLine(line: string): LifecycleLine | null {
  const m = LINE.exec(line);
  if (!m) return null;
  return { vm: m[1] ?? '', event: m[2] ?? '', detail: m[3] ?? '' };
}

/** The state a lifecycle event leaves the VM in; null for events that are not state changes. */
export function eventState(e: LifecycleLine): VmState | null {
  switch (e.event) {
    case 'Started':
    case 'Resumed':
      return 'running';
    case 'Suspended':
    case 'PMSuspended':
      return 'paused';
    case 'Shutdown':
      return 'stopping';
    case 'Crashed':
      return 'crashed';
    case 'Stopped':
      if (e.detail === 'Failed' || e.detail === 'Crashed') return 'crashed';
      if (e.detail === 'Saved') return 'saved';
      return 'stopped';
    default:
      return null;
  }
}
