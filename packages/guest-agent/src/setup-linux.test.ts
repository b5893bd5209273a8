import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ProgramRunner } from './run.js';
import { linuxSetup } from './setup-linux.js';

// A step asks the host for a restart when the guest says one is pending: /run/reboot-required.
let dir: string;
const noPrograms: ProgramRunner = async (cmd) => {
  throw new Error(`no program may run here (asked for ${cmd})`);
};
const signal = new AbortController().signal;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-setup-linux-'));
  for (const d of ['proc/sys/kernel', 'etc', 'run']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'proc/sys/kernel/hostname'), 'old\n');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('linuxSetup and /run/reboot-required', () => {
  const paths = (): { proc: string; etc: string; run: string } => ({
    proc: join(dir, 'proc'),
    etc: join(dir, 'etc'),
    run: join(dir, 'run'),
  });

  it('a rename needs no restart while the guest has no restart pending', async () => {
    const r = await linuxSetup(paths(), noPrograms).computerName('tg-1', signal);
    expect(r).toEqual({ message: 'hostname set to tg-1', rebootRequired: false });
  });

  it('every step asks for a restart once /run/reboot-required exists, and says why', async () => {
    writeFileSync(join(dir, 'run/reboot-required'), '*** System restart required ***\n');
    const setup = linuxSetup(paths(), noPrograms);
    const rename = await setup.computerName('tg-2', signal);
    expect(rename.rebootRequired).toBe(true);
    expect(rename.message).toContain('reboot-required: restart pending');
    const net = await setup.network({ instance: 'i-1', step: 'network', mode: 'none' }, signal);
    expect(net.rebootRequired).toBe(true);
  });

  it('without a run directory (scratch trees) the marker is not looked for', async () => {
    writeFileSync(join(dir, 'run/reboot-required'), 'x\n');
    const r = await linuxSetup({ proc: join(dir, 'proc'), etc: join(dir, 'etc') }, noPrograms).computerName(
      'tg-3',
      signal,
    );
    expect(r.rebootRequired).toBe(false);
  });
});
