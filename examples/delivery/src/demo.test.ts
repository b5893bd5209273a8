import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { runDeliveryDemo } from './demo.js';

it('pulls version 2 as a small delta and says how much it saved', async () => {
  const lines: string[] = [];
  const result = await runDeliveryDemo({
    workDir: await mkdtemp(join(tmpdir(), 'tandem-demo-')),
    log: (l) => lines.push(l),
    imageMiB: 4,
  });
  expect(result.second.version).toBe('2.0.0');
  expect(result.second.bytesFetched).toBeLessThan(result.second.bytesTotal / 3);
  expect(result.bytesSaved).toBe(result.second.bytesTotal - result.second.bytesFetched);
  expect(lines.some((l) => l.startsWith('bytes saved by delta sync'))).toBe(true);
});
