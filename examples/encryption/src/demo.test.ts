import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { runEncryptionDemo } from './demo.js';

it('pulls with the envelope, starts, and is refused once the lease has expired', async () => {
  const workDir = await mkdtemp(join(tmpdir(), 'tandem-encdemo-'));
  const lines: string[] = [];
  const result = await runEncryptionDemo({ workDir, log: (l) => lines.push(l) });
  expect(result.startedState).toBe('running');
  expect(result.refusedWith).toBe('TANDEM_LEASE');
  expect(lines.at(-1)).toBe('the VM is stopped');
  // Nothing of the image's plaintext is in any file of the flow (the image lived in memory).
  const disk = await readFile(join(workDir, 'workspace', 'images', 'disk.img'));
  const sample = disk.subarray(4096, 4096 + 64);
  for (const e of await readdir(join(workDir, 'install'), { recursive: true, withFileTypes: true })) {
    if (e.isFile()) expect((await readFile(join(e.parentPath, e.name))).includes(sample)).toBe(false);
  }
});
