import { describe, expect, it } from 'vitest';
import { VM_STATES } from '@tandem/core';
import { mapDomainState, mapSnapshotState, refineShutoff } from './state.js';

describe('state mapping', () => {
  it('maps every libvirt domain state into the normalized set', () => {
    const mapped = [0, 1, 2, 3, 4, 5, 6, 7, 99].map(mapDomainState);
    expect(mapped).toEqual([
      'unknown',
      'running',
      'running',
      'paused',
      'stopping',
      'stopped',
      'crashed',
      'paused',
      'unknown',
    ]);
    for (const s of mapped) expect(VM_STATES).toContain(s);
  });

  it('refines shut-off from the reason virsh prints and the managed-save image', () => {
    expect(refineShutoff('shut off (crashed)', false)).toBe('crashed');
    expect(refineShutoff('shut off (saved)', false)).toBe('saved');
    expect(refineShutoff('shut off (destroyed)', true)).toBe('saved');
    expect(refineShutoff('shut off (shutdown)\n', false)).toBe('stopped');
    expect(refineShutoff(undefined, false)).toBe('stopped');
  });

  it("maps a snapshot's state to what reverting brings back", () => {
    expect(['running', 'paused', 'shutoff', 'disk-snapshot', 'crashed', 'weird'].map(mapSnapshotState)).toEqual([
      'running',
      'paused',
      'stopped',
      'stopped',
      'crashed',
      'unknown',
    ]);
  });
});
