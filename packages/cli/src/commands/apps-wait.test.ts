import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { LaunchHandle } from '@tandem/core';
import { ExitCode } from '../exit-codes.js';
import { runCli } from '../program.js';
import { waitForLaunch, type SignalSource } from './apps-wait.js';

const WORKSPACE = `
apiVersion: tandem/v1
kind: Workspace
metadata: { name: legacy-erp, version: 1.0.0 }
spec:
  image: { source: ./erp.qcow2, format: qcow2 }
  hardware: { memory: { fixedMiB: 512 } }
  guestOs: linux
  publishedApps: [{ id: erp, name: Legacy ERP, command: /opt/erp/bin/erp }]
`;

let dir: string;
let out: string[];
let err: string[];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-apps-wait-'));
  out = [];
  err = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((c) => (out.push(String(c)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((c) => (err.push(String(c)), true));
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

const tandem = (...args: string[]): Promise<number> => runCli(['--state-dir', join(dir, 'state'), ...args]);

/** `tandem apps launch erp` (waiting), resolved once its launch line is printed. */
async function launching(): Promise<{ running: Promise<number> }> {
  writeFileSync(join(dir, 'erp.yaml'), WORKSPACE);
  expect(await tandem('up', join(dir, 'erp.yaml'), '--adapter', 'mock'), err.join('')).toBe(0);
  const running = tandem('apps', 'launch', 'erp');
  // The mock's app never closes by itself: the launch is waiting once it has printed its command.
  await vi.waitFor(() => expect(out.join('')).toMatch(/^erp: xpra: mock-seamless/m), { timeout: 30_000 });
  // Wrapped: an async function returning the promise itself would wait for it.
  return { running };
}

describe('tandem apps launch waits until the app, the session or the user ends it', () => {
  it('ends when another tandem stops the session, and says so', async () => {
    const { running } = await launching();
    const stopped = await tandem('stop', '--force');
    expect(stopped, err.join('')).toBe(0);
    expect(await running).toBe(ExitCode.ok);
    expect(err.join('')).toMatch(/erp: the session ended \(the VM is stopped\); xpra closed/);
  }, 60_000);

  it('ends when the session is taken down (the VM is gone)', async () => {
    const { running } = await launching();
    expect(await tandem('down')).toBe(0);
    expect(await running).toBe(ExitCode.ok);
    expect(err.join('')).toMatch(/erp: the session ended \(the session was removed\)/);
  }, 60_000);

  it('ends on Ctrl-C, closing the transport and leaving the session running', async () => {
    const before = process.listenerCount('SIGINT');
    const { running } = await launching();
    expect(process.listenerCount('SIGINT')).toBe(before + 1);
    process.emit('SIGINT');
    expect(await running).toBe(ExitCode.timeout);
    expect(err.join('')).toMatch(/erp: SIGINT: xpra closed; the session keeps running/);
    expect(process.listenerCount('SIGINT')).toBe(before);
    out = [];
    expect(await tandem('--json', 'status')).toBe(0);
    expect(out.join('')).toMatch(/"running"/);
  }, 60_000);
});

function handle(): LaunchHandle & { exit(code: number | null): void; closed: number } {
  let exit!: (code: number | null) => void;
  const exited = new Promise<number | null>((r) => (exit = r));
  const h = {
    transport: 'xpra' as const,
    argv: ['xpra', 'attach'],
    exited,
    closed: 0,
    exit: (code: number | null) => exit(code),
    close: async () => {
      h.closed += 1;
      exit(0);
    },
  };
  return h;
}

describe('waitForLaunch', () => {
  it("returns the transport's exit code and leaves nothing subscribed", async () => {
    const h = handle();
    const signals = new EventEmitter() as EventEmitter & SignalSource;
    let unwatched = false;
    const waiting = waitForLaunch({
      handle: h,
      sessionEnded: async () => null,
      watchEnded: () => () => (unwatched = true),
      signals,
    });
    h.exit(3);
    expect(await waiting).toEqual({ kind: 'exited', code: 3 });
    expect(h.closed).toBe(0);
    expect(unwatched).toBe(true);
    expect(signals.listenerCount('SIGINT') + signals.listenerCount('SIGTERM')).toBe(0);
  });

  it("ends on the adapter's push notice and on SIGTERM, closing the transport", async () => {
    const h = handle();
    let notify!: (reason: string) => void;
    const waiting = waitForLaunch({
      handle: h,
      sessionEnded: async () => null,
      watchEnded: (fn) => ((notify = fn), () => undefined),
      signals: new EventEmitter() as EventEmitter & SignalSource,
    });
    notify('guest powered off');
    expect(await waiting).toEqual({ kind: 'session-ended', reason: 'guest powered off' });
    expect(h.closed).toBe(1);

    const h2 = handle();
    const signals = new EventEmitter() as EventEmitter & SignalSource;
    const waiting2 = waitForLaunch({ handle: h2, sessionEnded: async () => null, signals });
    signals.emit('SIGTERM');
    expect(await waiting2).toEqual({ kind: 'interrupted', signal: 'SIGTERM' });
    expect(h2.closed).toBe(1);
  });

  it('keeps waiting through a failing check (the hypervisor restarting) and ends when the check says so', async () => {
    const h = handle();
    let calls = 0;
    const outcome = await waitForLaunch({
      handle: h,
      pollMs: 1,
      sessionEnded: async () => {
        calls += 1;
        if (calls === 1) throw new Error('libvirtd is restarting');
        return calls >= 3 ? 'the VM is crashed' : null;
      },
      signals: new EventEmitter() as EventEmitter & SignalSource,
    });
    expect(outcome).toEqual({ kind: 'session-ended', reason: 'the VM is crashed' });
    expect(calls).toBe(3);
  });
});
