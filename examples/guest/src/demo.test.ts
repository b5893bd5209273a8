import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { runGuestDemo } from './demo.js';

it('without a built test guest (or libvirt) says in one line what is missing, and boots nothing', async () => {
  const empty = await mkdtemp(join(tmpdir(), 'tandem-no-guest-'));
  const lines: string[] = [];
  const result = await runGuestDemo({ log: (l) => lines.push(l), guestDir: empty });
  expect(result.ran).toBe(false);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^guest demo skipped: (libvirt at .* is not usable|the test guest is not built at .*)/);
});
