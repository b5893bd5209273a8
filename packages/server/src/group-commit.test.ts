import { describe, expect, it, vi } from 'vitest';
import { InvalidInputError } from '@tandem/core';
import { StoreUnavailableError } from './store/errors.js';
import { GroupCommit } from './group-commit.js';

describe('GroupCommit', () => {
  it('writes the items asked for together in one write, each caller getting its own result', async () => {
    const many = vi.fn((items: readonly number[]) => Promise.resolve(items.map((i) => i * 10)));
    const one = vi.fn((i: number) => Promise.resolve(i * 10));
    const commit = new GroupCommit({ many, one });
    const results = await Promise.all([1, 2, 3, 4].map((i) => commit.write(i)));
    expect(results).toEqual([10, 20, 30, 40]);
    expect(many).toHaveBeenCalledTimes(1);
    expect(many).toHaveBeenCalledWith([1, 2, 3, 4]);
    expect(one).not.toHaveBeenCalled();
  });

  it('resolves nobody before the write is done', async () => {
    let finish: ((r: number[]) => void) | undefined;
    const commit = new GroupCommit({
      many: () => new Promise<number[]>((r) => (finish = r)),
      one: () => Promise.resolve(0),
    });
    let settled = 0;
    const all = [commit.write(1), commit.write(2)].map((p) => p.then(() => settled++));
    await vi.waitFor(() => expect(finish).toBeDefined(), { timeout: 5000 });
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(0);
    finish!([7, 8]);
    await Promise.all(all);
    expect(settled).toBe(2);
  });

  it('a write that throws instead of rejecting fails its callers, and the next write still runs', async () => {
    let calls = 0;
    const commit = new GroupCommit<number, number>({
      one: (i) => {
        if (calls++ === 0) throw new StoreUnavailableError('lost before its promise');
        return Promise.resolve(i);
      },
    });
    await expect(commit.write(1)).rejects.toThrow('lost before its promise');
    expect(await commit.write(2)).toBe(2);
  });

  it('a failed write fails every caller in it; an invalid item fails only its own caller', async () => {
    const down = new GroupCommit<number, number>({
      many: () => Promise.reject(new StoreUnavailableError('down')),
      one: (i) => Promise.resolve(i),
    });
    const r = await Promise.allSettled([down.write(1), down.write(2)]);
    expect(r.map((x) => x.status)).toEqual(['rejected', 'rejected']);

    const picky = new GroupCommit<number, number>({
      many: () => Promise.reject(new InvalidInputError('one is bad')),
      one: (i) => (i < 0 ? Promise.reject(new InvalidInputError('negative')) : Promise.resolve(i)),
    });
    const s = await Promise.allSettled([picky.write(1), picky.write(-1), picky.write(3)]);
    expect(s.map((x) => (x.status === 'fulfilled' ? x.value : 'refused'))).toEqual([1, 'refused', 3]);
  });

  it('keeps at most inFlight writes running and groups what waits meanwhile, up to maxWeight', async () => {
    const groups: number[][] = [];
    let running = 0;
    let most = 0;
    const commit = new GroupCommit<number, number>({
      many: async (items) => {
        groups.push([...items]);
        most = Math.max(most, ++running);
        await new Promise((r) => setTimeout(r, 5));
        running--;
        return [...items];
      },
      one: async (i) => {
        groups.push([i]);
        most = Math.max(most, ++running);
        await new Promise((r) => setTimeout(r, 5));
        running--;
        return i;
      },
      inFlight: 1,
      maxWeight: 3,
    });
    const items = Array.from({ length: 10 }, (_, i) => i);
    expect(await Promise.all(items.map((i) => commit.write(i)))).toEqual(items);
    expect(most).toBe(1);
    expect(groups.flat()).toEqual(items);
    for (const g of groups) expect(g.length).toBeLessThanOrEqual(3);
  });
});
