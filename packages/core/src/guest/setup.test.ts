import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EventBus } from '../events/bus.js';
import type { AnyTandemEvent } from '../events/types.js';
import { validateWorkspace } from '../workspace/load.js';
import { AgentEndpoint } from './agent-endpoint.js';
import { GuestConnection } from './connection.js';
import { FakeVirtioPort } from './fake-port.test-helper.js';
import type { SetupStepParams, SetupStepResult } from './protocol.js';
import { SetupRecordStore, localCredentials, runFirstTimeSetup } from './setup.js';

const workspace = validateWorkspace({
  apiVersion: 'tandem/v1',
  kind: 'Workspace',
  metadata: { name: 'erp', version: '1.0.0' },
  spec: {
    image: { source: 'x.qcow2', format: 'qcow2' },
    guestOs: 'windows',
    hardware: { memory: { fixedMiB: 512 } },
    network: { mode: 'none' },
    firstTimeSetup: { computerName: 'ERP-{random4}' },
  },
});

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

describe('first-time setup across a guest reboot', () => {
  it('a guest that reboots before answering is waited for; the step it finished is not run twice', async () => {
    const port = new FakeVirtioPort();
    // The guest's own record, which survives its reboot (its disk).
    const guestDone = new Map<string, SetupStepResult>();
    let renames = 0;
    let rebootNext = true;
    const boot = (): AgentEndpoint => {
      const a = new AgentEndpoint({
        software: 'test-agent',
        version: '1',
        handlers: {
          ping: async () => ({}),
          'setup.status': async () => ({ completed: [] }),
          'setup.step': async (p?: SetupStepParams) => {
            const done = guestDone.get(p!.step);
            if (done) return { ...done, status: 'already-done' as const };
            if (p!.step === 'computer-name') renames++;
            const result = { step: p!.step, status: 'done' as const, message: `${p!.step} ok`, rebootRequired: false };
            guestDone.set(p!.step, result);
            if (p!.step === 'computer-name' && rebootNext) {
              // Recorded, then the guest reboots before its answer goes out.
              rebootNext = false;
              port.detachGuest();
              setTimeout(() => void boot().serve(port.attachGuest()), 50);
              return new Promise<never>(() => undefined);
            }
            return result;
          },
        },
      });
      return a;
    };
    void boot().serve(port.attachGuest());
    const bus = new EventBus();
    const seen: AnyTandemEvent[] = [];
    bus.on('*', (e) => seen.push(e));
    const conn = new GuestConnection({
      adapter: { name: 'fake', guestChannel: port },
      vm: 'vm1',
      bus,
      backoff: { initialMs: 5, maxMs: 50 },
      pingIntervalMs: 20,
      pingTimeoutMs: 300,
      helloTimeoutMs: 300,
    });
    closers.push(() => conn.close());
    await conn.open({ timeoutMs: 30_000 });
    const records = new SetupRecordStore(mkdtempSync(join(tmpdir(), 'tandem-setup-')));
    const result = await conn.setup({ workspace, records, bus, variables: { random: () => 'AB12' } });
    expect(result.status).toBe('done');
    expect(result.record.computerName).toBe('ERP-AB12');
    expect(renames).toBe(1);
    expect(seen.map((e) => e.type)).toContain('guest.disconnected');
    const steps = seen
      .filter((e) => e.type === 'guest.setup-step')
      .map((e) => `${(e.data as { step: string }).step}:${(e.data as { status: string }).status}`);
    expect(steps).toEqual(['computer-name:started', 'computer-name:skipped', 'network:started', 'network:done']);
    expect(records.load('vm1')?.completedAt).toBeDefined();
  });
});

describe('credential references', () => {
  it('env:NAME gives the secret and NAME_USER the user', async () => {
    const c = localCredentials({ TJ: 'otp-1', TJ_USER: 'joiner' });
    expect(await c.resolve('env:TJ')).toEqual({ user: 'joiner', secret: 'otp-1' });
    await expect(c.resolve('env:MISSING')).rejects.toMatchObject({ code: 'TANDEM_NOT_FOUND' });
  });

  it('file:/path must be private to its owner', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-cred-'));
    const file = join(dir, 'join.json');
    writeFileSync(file, JSON.stringify({ user: 'joiner', secret: 'pw' }));
    chmodSync(file, 0o644);
    await expect(localCredentials().resolve(`file:${file}`)).rejects.toThrow(/chmod 600/);
    chmodSync(file, 0o600);
    expect(await localCredentials().resolve(`file:${file}`)).toEqual({ user: 'joiner', secret: 'pw' });
    await expect(localCredentials().resolve('vault:x')).rejects.toMatchObject({ code: 'TANDEM_INVALID_INPUT' });
  });
});

describe('first-time setup acts on rebootRequired', () => {
  it('restarts the VM when a step asks for it and ends once the agent said hello again', async () => {
    const port = new FakeVirtioPort();
    let restarts = 0;
    const boot = (): void => {
      const a = new AgentEndpoint({
        software: 'test-agent',
        version: '1',
        handlers: {
          ping: async () => ({}),
          'setup.status': async () => ({ completed: [] }),
          'setup.step': async (p?: SetupStepParams) => ({
            step: p!.step,
            status: 'done' as const,
            message: `${p!.step} ok`,
            // Windows: a rename takes effect after a restart.
            rebootRequired: p!.step === 'computer-name',
          }),
        },
      });
      void a.serve(port.attachGuest());
    };
    boot();
    const bus = new EventBus();
    const seen: AnyTandemEvent[] = [];
    bus.on('*', (e) => seen.push(e));
    const conn = new GuestConnection({
      adapter: { name: 'fake', guestChannel: port },
      vm: 'vm1',
      bus,
      backoff: { initialMs: 5, maxMs: 50 },
      pingIntervalMs: 20,
      pingTimeoutMs: 300,
      helloTimeoutMs: 300,
    });
    closers.push(() => conn.close());
    await conn.open({ timeoutMs: 30_000 });
    const records = new SetupRecordStore(mkdtempSync(join(tmpdir(), 'tandem-setup-')));
    const result = await runFirstTimeSetup({
      connection: conn,
      workspace,
      records,
      bus,
      restart: async () => {
        // The VM goes down and comes back with a new agent process.
        restarts++;
        port.detachGuest();
        setTimeout(boot, 50);
      },
    });
    expect(restarts).toBe(1);
    expect(result.status).toBe('done');
    expect(result.rebootRequired).toBe(false);
    expect(records.load('vm1')?.rebootRequired).toBe(false);
    const steps = seen
      .filter((e) => e.type === 'guest.setup-step')
      .map((e) => `${(e.data as { step: string }).step} ${(e.data as { status: string }).status}`);
    expect(steps.slice(-2)).toEqual(['restart started', 'restart done']);
    // The agent's second hello came before the restart was reported done.
    const reconnected = seen.findIndex((e) => e.type === 'guest.connected' && e.data.reconnect);
    const done = seen.findIndex(
      (e) => e.type === 'guest.setup-step' && e.data.step === 'restart' && e.data.status === 'done',
    );
    expect(reconnected).toBeGreaterThan(-1);
    expect(reconnected).toBeLessThan(done);
    const completed = seen.find((e) => e.type === 'guest.setup-completed');
    expect(completed?.data).toMatchObject({ rebootRequired: false });

    // Already done: no second restart.
    const again = await runFirstTimeSetup({
      connection: conn,
      workspace,
      records,
      bus,
      restart: async () => void restarts++,
    });
    expect(again.status).toBe('already-done');
    expect(restarts).toBe(1);
  }, 60_000);
});
