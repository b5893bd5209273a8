// Fast tests against libvirt's in-process test driver (test:///default): real libvirt code,
// no daemon, no QEMU. Each connection gets a fresh driver, so what needs virsh on the same
// state (snapshots, managed save) is tested against qemu:///system instead.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TandemError, type VmSpec } from '@tandem/core';
import { integrationGate } from '@tandem/core/testing';
import { LibvirtAdapter } from './adapter.js';
import { loadBinding } from './binding.js';
import { quoteVirshToken } from './virsh/quote.js';

const run = promisify(execFile);

const gate = await integrationGate(
  'libvirt test driver',
  async () => {
    const binding = await loadBinding();
    if (!binding.ok) return `the @unraid/libvirt binding is not usable (${binding.reason})`;
    await run('virsh', ['-c', 'test:///default', 'version']);
    return null;
  },
  'install libvirt-clients and libvirt-dev, then npm rebuild @unraid/libvirt',
);

const spec = (name: string): VmSpec => ({
  name,
  memoryMiB: 64,
  cpus: 1,
  disks: [],
  network: { mode: 'none' },
  graphics: { kind: 'none' },
  osFamily: 'other',
});

describe.skipIf(!gate.enabled)('libvirt adapter on test:///default', () => {
  const adapter = (): LibvirtAdapter => new LibvirtAdapter({ uri: 'test:///default', virtType: 'qemu' });

  it('probe reports the test hypervisor and host facts', async () => {
    const a = adapter();
    const probe = await a.probe();
    await a.close();
    expect(probe.usable).toBe(true);
    if (!probe.usable) return;
    expect(probe.host.cpus).toBeGreaterThan(0);
    expect(probe.host.memoryMiB).toBeGreaterThan(0);
    expect(probe.details?.['libvirtLibrary']).toMatch(/^\d+\.\d+/);
  });

  it('defines, starts, suspends, resumes and stops a VM', async () => {
    const a = adapter();
    try {
      const info = await a.define(spec('tandem-it-td'));
      expect(info).toMatchObject({ name: 'tandem-it-td', state: 'stopped', memoryMiB: 64, cpus: 1 });
      expect(info.id).toMatch(/^[0-9a-f-]{36}$/);
      await a.start('tandem-it-td');
      expect(await a.state('tandem-it-td')).toBe('running');
      await a.suspend('tandem-it-td');
      expect(await a.state('tandem-it-td')).toBe('paused');
      await a.resume('tandem-it-td');
      expect((await a.list()).find((v) => v.name === 'tandem-it-td')?.state).toBe('running');
      await a.stop('tandem-it-td', { force: true });
      expect(await a.state('tandem-it-td')).toBe('stopped');
    } finally {
      await a.close();
    }
  });

  it("unknown VMs are NotFoundError carrying libvirt's message", async () => {
    const a = adapter();
    try {
      for (const op of [
        () => a.state('nope'),
        () => a.start('nope'),
        () => a.suspend('nope'),
        () => a.destroy('nope'),
      ]) {
        const err = await op().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(TandemError.is(err, 'TANDEM_NOT_FOUND')).toBe(true);
        expect((err as TandemError).details['libvirtMessage']).toMatch(/Domain not found/);
      }
    } finally {
      await a.close();
    }
  });

  it('the wrong state is InvalidStateError naming the state', async () => {
    const a = adapter();
    try {
      // `test` is the driver's built-in running VM.
      const err = await a.start('test').catch((e: unknown) => e);
      expect(TandemError.is(err, 'TANDEM_INVALID_STATE')).toBe(true);
      expect((err as TandemError).details['current']).toBe('running');
      await expect(a.resume('test')).rejects.toMatchObject({
        code: 'TANDEM_INVALID_STATE',
        details: { current: 'running' },
      });
    } finally {
      await a.close();
    }
  });

  it('list() reads back disks, network and labels; redefine() refuses a running or unknown VM', async () => {
    const a = adapter();
    try {
      await a.define({ ...spec('tandem-it-td-view'), labels: { 'tandem.version': '1.0.0' } });
      expect((await a.list()).find((v) => v.name === 'tandem-it-td-view')).toMatchObject({
        disks: [],
        network: { mode: 'none' },
        labels: { 'tandem.version': '1.0.0' },
      });
      // `test` is the driver's built-in running VM.
      await expect(a.redefine({ ...spec('test'), memoryMiB: 128 })).rejects.toMatchObject({
        code: 'TANDEM_INVALID_STATE',
        details: { current: 'running' },
      });
      await expect(a.redefine(spec('nope'))).rejects.toMatchObject({ code: 'TANDEM_NOT_FOUND' });
    } finally {
      await a.close();
    }
  });

  it("a definition libvirt rejects is HypervisorError with libvirt's own message", async () => {
    const a = adapter();
    try {
      const err = await a.define(spec('bad/name')).catch((e: unknown) => e);
      expect(TandemError.is(err, 'TANDEM_HYPERVISOR')).toBe(true);
      expect((err as TandemError).details['libvirtMessage']).toMatch(/cannot contain '\/'/);
      await expect(a.define(spec('test'))).rejects.toMatchObject({ code: 'TANDEM_CONFLICT' });
    } finally {
      await a.close();
    }
  });

  it('an unreachable daemon is a reason from probe and HostError from calls', async () => {
    const a = new LibvirtAdapter({ uri: 'qemu+unix:///system?socket=/nonexistent/tandem.sock' });
    try {
      const probe = await a.probe();
      expect(probe.usable).toBe(false);
      if (!probe.usable) {
        expect(probe.reason).toContain(
          'libvirtd is unreachable at qemu+unix:///system?socket=/nonexistent/tandem.sock',
        );
        expect(probe.reason).toContain('/nonexistent/tandem.sock');
        expect(probe.fix).toContain('libvirtd');
      }
      const err = await a.list().catch((e: unknown) => e);
      expect(TandemError.is(err, 'TANDEM_HOST')).toBe(true);
      expect((err as TandemError).retryable).toBe(true);
      expect(String((err as TandemError).details['libvirtMessage'])).toMatch(/Failed to connect socket/);
    } finally {
      await a.close();
    }
  });

  it("virsh's own parser gives back exactly the tokens the quoting wrote", async () => {
    const token = fc.string({ unit: 'grapheme', maxLength: 12 }).filter((s) => !/[\0\n\r]/.test(s));
    const samples = fc.sample(token, { numRuns: 40, seed: 11 });
    samples.push(`a'b`, 'x; destroy test', '#comment', '"dq"', '\\back\\', ' lead', 'é ü 中文', '--domain', '');
    const script = samples.map((s) => `echo -- ${quoteVirshToken(s)}`).join(' ; ');
    const { stdout } = await run('virsh', ['-c', 'test:///default', script], {
      env: { ...process.env, LC_ALL: 'C.UTF-8' },
    });
    expect(stdout.split('\n').slice(0, samples.length)).toEqual(samples);
  });
});
