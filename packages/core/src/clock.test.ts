import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { VirtualClock } from './clock.js';
import { TandemError } from './errors.js';

const run = promisify(execFile);

describe('VirtualClock', () => {
  it('waitForSleepers waits for the sleep itself, also behind a real process', async () => {
    const clock = new VirtualClock(1_000);
    let slept = false;
    // Code that runs a real process before it sleeps, as an adapter polling a hypervisor does.
    const work = (async () => {
      await run(process.execPath, ['-e', 'setTimeout(() => {}, 50)']);
      await clock.sleep(500);
      slept = true;
    })();
    await clock.waitForSleepers();
    expect(clock.pending).toBe(1);
    expect(slept).toBe(false);
    await clock.advance(500);
    await work;
    expect(slept).toBe(true);
    expect(clock.now()).toBe(1_500);
  });

  it('waitForSleepers ends with CancelledError when its signal aborts', async () => {
    const clock = new VirtualClock();
    const ac = new AbortController();
    const waiting = clock.waitForSleepers(1, ac.signal).catch((e: unknown) => e);
    ac.abort();
    expect(TandemError.is(await waiting, 'TANDEM_CANCELLED')).toBe(true);
  });

  it('runUntilSettled advances only while the work sleeps, and returns or throws what it does', async () => {
    const clock = new VirtualClock(0);
    const polls: number[] = [];
    const poll = async (until: number): Promise<string> => {
      while (clock.now() < until) {
        // A real process between sleeps: the driver must not race ahead of it.
        await run(process.execPath, ['-e', '0']);
        polls.push(clock.now());
        await clock.sleep(1_000);
      }
      return 'done';
    };
    expect(await clock.runUntilSettled(poll(3_000), 1_000)).toBe('done');
    expect(polls).toEqual([0, 1_000, 2_000]);

    const failing = (async () => {
      await clock.sleep(250);
      throw new Error('gave up');
    })();
    await expect(clock.runUntilSettled(failing, 1_000)).rejects.toThrow('gave up');
    // It stepped to the sleeper's deadline, not a whole step past it.
    expect(clock.now()).toBe(3_250);
  });
});
