import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualClock } from '../clock.js';
import { TandemError } from '../errors.js';
import type { VmSpec } from '../adapter/types.js';
import { adapterConformanceSuite } from './conformance.js';
import { MockAdapter } from './mock-adapter.js';
import { mockConformanceSubject } from './mock-conformance.js';

const spec = (name: string, extra: Partial<VmSpec> = {}): VmSpec => ({
  name,
  memoryMiB: 64,
  cpus: 1,
  disks: [{ path: `/images/${name}.qcow2`, format: 'qcow2' }],
  network: { mode: 'none' },
  graphics: { kind: 'none' },
  osFamily: 'windows',
  ...extra,
});

// The guest that ignores a graceful stop makes the suite wait out this timeout (real time).
const GRACE = { gracefulStopTimeoutMs: 50 };

describe('MockAdapter conformance, every hook', () => {
  adapterConformanceSuite(it, async () => mockConformanceSubject(), GRACE);
});

describe('MockAdapter conformance, persisted to a state file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-mock-'));
  adapterConformanceSuite(it, async () => mockConformanceSubject({ stateFile: join(dir, 'mock.json') }), GRACE);
});

describe('MockAdapter conformance without optional capabilities, through { test }', () => {
  adapterConformanceSuite(
    { test: it },
    async () => ({
      adapter: new MockAdapter({ capabilities: { snapshots: false, suspend: { pause: true, save: false } } }),
      vmSpec: (n) => spec(n),
    }),
    GRACE,
  );
});

describe('MockAdapter specifics', () => {
  it('fails the next N calls of an operation, then recovers, and logs every call', async () => {
    const a = new MockAdapter();
    await a.define(spec('vm'));
    a.faults.failNext('start', 2);
    await expect(a.start('vm')).rejects.toMatchObject({ code: 'TANDEM_HYPERVISOR', retryable: true });
    await expect(a.start('vm')).rejects.toMatchObject({ code: 'TANDEM_HYPERVISOR' });
    await a.start('vm');
    expect(await a.state('vm')).toBe('running');
    expect(a.calls.filter((c) => c.op === 'start').map((c) => c.outcome)).toEqual(['error', 'error', 'ok']);
  });

  it('makes operations slow on its virtual clock', async () => {
    const clock = new VirtualClock(1_000);
    const a = new MockAdapter({ clock });
    await a.define(spec('vm'));
    a.faults.slow('start', 5_000);
    let done = false;
    const p = a.start('vm').then(() => (done = true));
    await clock.waitForSleepers();
    await clock.advance(4_999);
    expect(done).toBe(false);
    await clock.advance(1);
    await p;
    expect(done).toBe(true);
  });

  it('crashes a running VM and tells watchers', async () => {
    const a = new MockAdapter();
    const seen: string[] = [];
    a.watch((e) => seen.push(`${e.vm}:${e.state}:${e.reason}`));
    await a.define(spec('vm'));
    await a.start('vm');
    a.crash('vm');
    expect(await a.state('vm')).toBe('crashed');
    expect(seen).toEqual(['vm:crashed:the VM process was killed']);
    await a.start('vm');
    expect(await a.state('vm')).toBe('running');
  });

  it('waits out a graceful stop the guest ignores, then forces or times out', async () => {
    const clock = new VirtualClock();
    const a = new MockAdapter({ clock, guestHonoursShutdown: false });
    await a.define(spec('vm'));
    await a.start('vm');
    const timedOut = expect(a.stop('vm', { timeoutMs: 10_000, forceAfterTimeout: false })).rejects.toMatchObject({
      code: 'TANDEM_TIMEOUT',
    });
    await clock.waitForSleepers();
    await clock.advance(10_000);
    await timedOut;
    expect(await a.state('vm')).toBe('running');
    const forced = a.stop('vm', { timeoutMs: 10_000 });
    await clock.waitForSleepers();
    await clock.advance(10_000);
    await forced;
    expect(await a.state('vm')).toBe('stopped');
  });

  it('keeps VMs across instances through its state file', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'tandem-mock-')), 'state.json');
    const first = new MockAdapter({ stateFile: file });
    await first.define(spec('vm'));
    await first.start('vm');
    await first.snapshots.create('vm', { name: 's1' });
    const second = new MockAdapter({ stateFile: file });
    expect(await second.state('vm')).toBe('running');
    expect((await second.snapshots.list('vm')).map((s) => s.name)).toEqual(['s1']);
  });

  it('opens a guest channel whose other end the test holds', async () => {
    const a = new MockAdapter();
    await a.define(spec('vm'));
    await expect(a.guestChannel.open('vm')).rejects.toMatchObject({ code: 'TANDEM_INVALID_STATE' });
    await a.start('vm');
    const host = await a.guestChannel.open('vm');
    const [guest] = a.guestEnds('vm');
    const received = new Promise<string>((resolve) => guest!.once('data', (d: Buffer) => resolve(d.toString())));
    host.write('hello guest');
    expect(await received).toBe('hello guest');
    host.destroy();
    guest!.destroy();
  });

  it('launches published apps only on a running VM, with the transport for its OS', async () => {
    const a = new MockAdapter();
    await a.define(spec('win'));
    await a.define(spec('lin', { osFamily: 'linux' }));
    await expect(
      a.seamless.launch('win', { appId: 'erp', command: 'C:\\erp.exe', mode: 'seamless' }),
    ).rejects.toMatchObject({
      code: 'TANDEM_INVALID_STATE',
    });
    await a.start('win');
    await a.start('lin');
    const win = await a.seamless.launch('win', {
      appId: 'erp',
      command: 'C:\\Program Files\\ERP\\erp.exe',
      mode: 'seamless',
    });
    expect(win.transport).toBe('rdp-remoteapp');
    expect(win.argv).toContain('--app=C:\\Program Files\\ERP\\erp.exe');
    const lin = await a.seamless.launch('lin', { appId: 'xterm', command: 'xterm', mode: 'seamless' });
    expect(lin.transport).toBe('xpra');
    await win.close();
    expect(await win.exited).toBe(0);
  });

  it('starts an encrypted disk only with its key', async () => {
    const a = new MockAdapter();
    const s = spec('vm', { disks: [{ path: '/images/enc.qcow2', format: 'qcow2', encryption: { keyId: 'k1' } }] });
    const key = new Uint8Array(32).fill(7);
    await a.diskEncryption.encrypt(s.disks[0]!, key);
    await a.define(s);
    await expect(a.start('vm')).rejects.toMatchObject({ code: 'TANDEM_INVALID_INPUT' });
    await expect(a.start('vm', { diskKeys: new Map([['k1', new Uint8Array(32)]]) })).rejects.toMatchObject({
      code: 'TANDEM_INTEGRITY',
    });
    await a.start('vm', { diskKeys: new Map([['k1', key]]) });
    expect(await a.state('vm')).toBe('running');
    // Reverting to a snapshot of the running VM starts it: the key is needed again.
    const live = await a.snapshots.create('vm', { name: 'live' });
    await a.stop('vm', { force: true });
    await expect(a.snapshots.revert('vm', live.id)).rejects.toMatchObject({ code: 'TANDEM_INVALID_INPUT' });
    await a.snapshots.revert('vm', live.id, { diskKeys: new Map([['k1', key]]) });
    expect(await a.state('vm')).toBe('running');
  });

  it('rejects NUL bytes in names before doing anything', async () => {
    const a = new MockAdapter();
    const err = await a.define(spec('bad\0name')).catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_INVALID_INPUT')).toBe(true);
    expect(await a.list()).toEqual([]);
  });
});
