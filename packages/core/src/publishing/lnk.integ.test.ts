import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { integrationGate } from '../testing/integration.js';
import { writeShellLink } from './lnk.js';
import { WindowsLaunchers } from './windows.js';
import { solidPng, walk } from './test-helpers.test-helper.js';

const run = promisify(execFile);

const gate = await integrationGate(
  'lnkinfo (liblnk)',
  async () => {
    try {
      await run('lnkinfo', ['-V']);
      return null;
    } catch {
      return 'lnkinfo is not installed';
    }
  },
  'apt-get install -y liblnk-utils',
);

/** lnkinfo's "Key : value" lines. */
async function lnkinfo(file: string): Promise<Map<string, string>> {
  const { stdout } = await run('lnkinfo', [file], { env: { ...process.env, LC_ALL: 'C.UTF-8' } });
  const out = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const m = /^\t([A-Za-z ]+?)\s*:\s?(.*)$/.exec(line);
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

const dir = mkdtempSync(join(tmpdir(), 'tandem-lnk-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!gate.enabled)('shortcuts read back by liblnk, an independent reader', () => {
  it('a written shortcut shows its target, arguments, description and icon in lnkinfo', async () => {
    const file = join(dir, 'a.lnk');
    writeFileSync(
      file,
      writeShellLink({
        target: 'C:\\Program Files\\Tandem\\tandem.exe',
        arguments: 'apps launch --workspace "legacy erp" erp',
        description: 'Legacy ERP — Ünïcode 名前',
        iconLocation: 'C:\\T\\erp.ico',
        time: new Date('2026-12-01T00:00:00Z'),
      }),
    );
    const info = await lnkinfo(file);
    expect(info.get('Local path')).toBe('C:\\Program Files\\Tandem\\tandem.exe');
    expect(info.get('Command line arguments')).toBe('apps launch --workspace "legacy erp" erp');
    expect(info.get('Description')).toBe('Legacy ERP — Ünïcode 名前');
    expect(info.get('Icon location')).toBe('C:\\T\\erp.ico');
    expect(info.get('Drive type')).toBe('Fixed (3)');
    expect(info.get('Creation time')).toMatch(/^Dec 01, 2026 00:00:00/);
  });

  it("the Start Menu's shortcuts for a workspace, in their folder, read back", async () => {
    const programs = join(dir, 'Programs');
    const start = new WindowsLaunchers({
      programsDir: programs,
      stateDir: join(dir, 'state'),
      stateDirWindowsPath: 'C:\\Users\\ada\\AppData\\Local\\Tandem\\launchers',
      target: 'C:\\Program Files\\Tandem\\tandem.exe',
    });
    start.install({
      workspace: 'legacy-erp',
      apps: [
        { id: 'erp', name: 'Legacy ERP', startMenuFolder: 'Legacy', icon: { bytes: solidPng(32) } },
        { id: 'con', name: 'CON' },
      ],
    });
    expect(readdirSync(join(programs, 'Legacy'))).toEqual(['Legacy ERP.lnk']);
    const info = await lnkinfo(join(programs, 'Legacy', 'Legacy ERP.lnk'));
    expect(info.get('Command line arguments')).toBe('apps launch --workspace legacy-erp erp');
    expect(info.get('Icon location')).toBe(
      'C:\\Users\\ada\\AppData\\Local\\Tandem\\launchers\\tandem-legacy-erp-erp.ico',
    );
    // A device name is never a file name on Windows.
    expect((await lnkinfo(join(programs, '_CON.lnk'))).get('Description')).toBe('CON');
    start.remove('legacy-erp');
    expect(walk(dir).filter((f) => f.startsWith(programs) || f.includes('state'))).toEqual([]);
  });
});
