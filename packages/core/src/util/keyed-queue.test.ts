import { describe, expect, it } from 'vitest';
import { KeyedQueue } from './keyed-queue.js';

describe('KeyedQueue', () => {
  it('runs tasks for one key in order, one at a time, and other keys independently', async () => {
    const s = new KeyedQueue();
    const log: string[] = [];
    let inFlight = 0;
    const task =
      (name: string, fail = false) =>
      async () => {
        inFlight++;
        expect(inFlight).toBeLessThanOrEqual(2);
        log.push(`start ${name}`);
        await new Promise((r) => setTimeout(r, 5));
        log.push(`end ${name}`);
        inFlight--;
        if (fail) throw new Error(name);
        return name;
      };
    const results = await Promise.allSettled([
      s.run('a', task('a1', true)),
      s.run('a', task('a2')),
      s.run('b', task('b1')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'fulfilled']);
    const a = log.filter((l) => l.includes(' a'));
    expect(a).toEqual(['start a1', 'end a1', 'start a2', 'end a2']);
    await new Promise((r) => setTimeout(r, 0));
    expect(s.busy('a') || s.busy('b')).toBe(false);
  });
});
