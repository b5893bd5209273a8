import { appendFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { EventBus, type AnyTandemEvent } from '@tandem/core';
import { afterEach, describe, expect, it } from 'vitest';
import { DiskEventQueue } from './event-queue.js';
import { tempDir } from './fixtures.test-helper.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

function events(n: number): AnyTandemEvent[] {
  const bus = new EventBus();
  const out: AnyTandemEvent[] = [];
  bus.on('*', (e) => out.push(e));
  for (let i = 0; i < n; i++)
    bus.publish('policy.decision', { outcome: 'allow', reason: `r${i}` } as never, { workspace: 'erp' });
  return out;
}

describe('DiskEventQueue', () => {
  it('gives events back in order across segments and reopenings, and forgets only what was acknowledged', () => {
    const t = tempDir();
    cleanups.push(t.remove);
    const dir = join(t.dir, 'q');
    const all = events(50);
    let q = new DiskEventQueue(dir, { segmentBytes: 600 });
    for (const e of all.slice(0, 30)) q.write(e);
    expect(q.depth).toBe(30);
    const b1 = q.peek(12);
    expect(b1.events.map((e) => e.id)).toEqual(all.slice(0, 12).map((e) => e.id));
    expect(q.ack(b1.end)).toBe(12);
    q.close();
    q = new DiskEventQueue(dir, { segmentBytes: 600 });
    expect(q.depth).toBe(18);
    for (const e of all.slice(30)) q.write(e);
    const got: string[] = [];
    for (;;) {
      const b = q.peek(7);
      if (b.events.length === 0) break;
      got.push(...b.events.map((e) => e.id));
      q.ack(b.end);
    }
    expect(got).toEqual(all.slice(12).map((e) => e.id));
    expect(q.depth).toBe(0);
    expect(readdirSync(dir).filter((f) => f.startsWith('segment-')).length).toBe(1);
    q.close();
  });

  it('cuts off a torn last line (a crash mid-append) and keeps every whole event', () => {
    const t = tempDir();
    cleanups.push(t.remove);
    const dir = join(t.dir, 'q');
    const all = events(3);
    const q = new DiskEventQueue(dir);
    for (const e of all) q.write(e);
    q.close();
    const seg = readdirSync(dir).find((f) => f.startsWith('segment-'))!;
    appendFileSync(join(dir, seg), '{"id":"torn","ty');
    const again = new DiskEventQueue(dir);
    expect(again.depth).toBe(3);
    const e4 = events(1)[0]!;
    again.write(e4);
    expect(again.peek(10).events.map((e) => e.id)).toEqual([...all, e4].map((e) => e.id));
    again.close();
  });
});
