import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..', '..');
const runner = join(root, 'bench', 'run.mjs');

describe('npm run bench (bench/run.mjs)', () => {
  it('lists every benchmark script in bench/, and refuses an unknown name naming the ones there are', () => {
    const scripts = readdirSync(join(root, 'bench'))
      .filter((f) => f.endsWith('.mjs') && f !== 'run.mjs')
      .map((f) => f.replace(/\.mjs$/, ''));
    const list = spawnSync(process.execPath, [runner], { encoding: 'utf8' });
    expect(list.status).toBe(0);
    for (const name of scripts) expect(list.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));

    const bad = spawnSync(process.execPath, [runner, 'no-such-bench'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('No benchmark named "no-such-bench"');
    for (const name of scripts) expect(bad.stderr).toContain(name);
  });
});
