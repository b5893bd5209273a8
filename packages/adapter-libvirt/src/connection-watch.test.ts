import { describe, expect, it, vi } from 'vitest';
import { VirtualClock, type HypervisorConnectionEvent } from '@tandem/core';
import { ConnectionWatch } from './connection-watch.js';

const TIMING = { keepaliveMs: 5_000, keepaliveTimeoutMs: 2_000, reconnectMs: 500, maxReconnectMs: 2_000 };

function setup() {
  const clock = new VirtualClock(1_000_000);
  let up = true;
  let hang = false;
  const pings: number[] = [];
  const watch = new ConnectionWatch(
    () => {
      pings.push(clock.now());
      if (hang) return new Promise<void>(() => undefined);
      return up ? Promise.resolve() : Promise.reject(new Error('Failed to connect socket: Connection refused'));
    },
    clock,
    TIMING,
  );
  const seen: HypervisorConnectionEvent[] = [];
  const off = watch.subscribe((e) => seen.push(e));
  return {
    clock,
    watch,
    seen,
    pings,
    off,
    setUp: (v: boolean) => (up = v),
    setHang: (v: boolean) => (hang = v),
    /** Runs the next wait of the keep-alive loop to its end. */
    step: async (): Promise<void> => {
      await clock.waitForSleepers();
      const before = pings.length;
      await clock.advance(TIMING.maxReconnectMs * 10);
      await vi.waitFor(() => expect(pings.length).toBeGreaterThan(before));
    },
  };
}

describe('ConnectionWatch', () => {
  it('notices a loss by its keep-alive, retries with backoff, and reports the return once', async () => {
    const { clock, watch, seen, pings, setUp } = setup();
    await clock.waitForSleepers();
    await clock.advance(5_000);
    await vi.waitFor(() => expect(pings).toHaveLength(1));
    expect(seen).toEqual([]);
    setUp(false);
    await clock.waitForSleepers();
    await clock.advance(5_000);
    await vi.waitFor(() => expect(seen).toHaveLength(1));
    expect(seen[0]).toMatchObject({ state: 'lost', reason: expect.stringMatching(/Connection refused/) as unknown });
    expect(watch.isLost).toBe(true);
    // Reconnection tries after 500, 1000, 2000, 2000 ms (capped).
    const gaps: number[] = [];
    for (let i = 0; i < 4; i++) {
      const last = pings.at(-1)!;
      await clock.waitForSleepers();
      await clock.advance([500, 1000, 2000, 2000][i]!);
      await vi.waitFor(() => expect(pings.at(-1)).toBeGreaterThan(last));
      gaps.push(pings.at(-1)! - last);
    }
    expect(gaps).toEqual([500, 1000, 2000, 2000]);
    expect(seen).toHaveLength(1); // still lost, said once
    setUp(true);
    await clock.waitForSleepers();
    await clock.advance(2_000);
    await vi.waitFor(() => expect(seen).toHaveLength(2));
    expect(seen[1]).toMatchObject({ state: 'restored' });
    expect(watch.isLost).toBe(false);
  });

  it('hears losses and returns from the calls themselves', async () => {
    const { watch, seen, off } = setup();
    watch.ok();
    expect(seen).toEqual([]); // nothing was lost
    watch.lost('Cannot recv data: Connection reset by peer');
    watch.lost('client socket is closed');
    watch.ok();
    watch.ok();
    expect(seen.map((e) => [e.state, e.reason])).toEqual([
      ['lost', 'Cannot recv data: Connection reset by peer'],
      ['restored', expect.stringMatching(/answered again/)],
    ]);
    off();
  });

  it('counts an unanswered keep-alive as a loss', async () => {
    const { clock, seen, setHang, step } = setup();
    setHang(true);
    await step(); // the keep-alive goes out and hangs
    await clock.waitForSleepers();
    await clock.advance(2_000);
    await vi.waitFor(() => expect(seen).toHaveLength(1));
    expect(seen[0]?.reason).toMatch(/did not answer within 2000 ms/);
  });

  it('runs only while someone listens', async () => {
    const { clock, off, watch, pings } = setup();
    await clock.waitForSleepers();
    off();
    expect(clock.pending).toBe(0);
    await clock.advance(60_000);
    expect(pings).toEqual([]);
    watch.lost('gone'); // still tracked for the calls, with nobody to tell
    expect(watch.isLost).toBe(true);
    expect(clock.pending).toBe(0);
  });

  it('checks at once when nudged', async () => {
    const { clock, watch, pings } = setup();
    await clock.waitForSleepers();
    watch.nudge();
    await vi.waitFor(() => expect(pings).toEqual([clock.now()]));
    watch.close();
  });
});
