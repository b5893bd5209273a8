import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { integrationGate } from '../testing/integration.js';
import { FreedesktopLaunchers } from './freedesktop.js';
import { hostileString, solidPng } from './test-helpers.test-helper.js';

const run = promisify(execFile);

const gate = await integrationGate(
  'desktop-file-validate',
  async () => {
    try {
      await run('desktop-file-validate', ['--help']);
      return null;
    } catch {
      return 'desktop-file-validate is not installed';
    }
  },
  'apt-get install -y desktop-file-utils',
);

/** What desktop-file-validate says about a file: empty when it is clean (hints allowed). */
async function validate(file: string): Promise<string[]> {
  const r = await run('desktop-file-validate', [file]).catch((err: { stdout?: string; stderr?: string }) => ({
    stdout: err.stdout ?? '',
    stderr: `${err.stderr ?? ''}\nexit status non-zero`,
  }));
  return `${r.stdout}\n${r.stderr}`
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/: hint: /.test(l));
}

const dir = mkdtempSync(join(tmpdir(), 'tandem-dfv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!gate.enabled)("every generated file passes Debian's desktop-file-validate", () => {
  it('published apps with icons, file types and a menu folder, and the URL handler', async () => {
    const l = new FreedesktopLaunchers({ dataHome: join(dir, 'a', 'data'), configHome: join(dir, 'a', 'config') });
    const r = l.install({
      workspace: 'legacy-erp',
      apps: [
        {
          id: 'erp',
          name: 'Legacy ERP',
          startMenuFolder: 'Legacy',
          fileTypes: ['.erp'],
          icon: { bytes: solidPng(48) },
        },
        { id: 'calc', name: 'Calculator', wmClass: 'xcalc' },
      ],
    });
    const files = [...r.written, ...l.installUrlHandler().written].filter((f) => /\.(desktop|directory)$/.test(f));
    expect(files).toHaveLength(4);
    for (const f of files) expect(await validate(f), f).toEqual([]);
  });

  it('hostile names from the guest still give valid files', async () => {
    const samples = fc.sample(
      fc.record({
        workspace: hostileString(),
        id: hostileString(),
        name: hostileString(),
        folder: hostileString(),
        ext: hostileString(),
      }),
      { numRuns: 40, seed: 13 },
    );
    let checked = 0;
    for (const [i, s] of samples.entries()) {
      if (s.workspace.includes('\0') || s.id.includes('\0')) continue;
      const l = new FreedesktopLaunchers({
        dataHome: join(dir, `h${i}`, 'data'),
        configHome: join(dir, `h${i}`, 'config'),
      });
      const r = l.install({
        workspace: s.workspace,
        apps: [{ id: s.id, name: s.name, startMenuFolder: s.folder, fileTypes: [s.ext, '.erp'], wmClass: s.name }],
      });
      for (const f of r.written.filter((x) => /\.(desktop|directory)$/.test(x))) {
        expect(await validate(f), `${f}: ${JSON.stringify(s)}`).toEqual([]);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(40);
  });
});
