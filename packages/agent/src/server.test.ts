import { statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { VirtualClock, type AnyTandemEvent } from '@tandem/core';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentClient } from './client.js';
import { mockOpener, tempDir, writeWorkspace } from './fixtures.test-helper.js';
import { runAgent, type RunningAgent } from './run.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function start(dir: string, clock = new VirtualClock(Date.parse('2026-12-01T09:00:00Z'))): Promise<RunningAgent> {
  const running = await runAgent({
    stateDir: join(dir, 'state'),
    socketPath: join(dir, 'run', 'agent.sock'),
    openAdapter: mockOpener(join(dir, 'state', 'mock', 'hypervisor.json'), clock),
    clock,
    version: 'test',
  });
  cleanups.push(() => running.stop());
  return running;
}

async function client(running: RunningAgent): Promise<AgentClient> {
  const c = await AgentClient.connect(running.server.socketPath, { client: 'test' });
  cleanups.push(() => c.close());
  return c;
}

/** Raw lines exchanged with the socket, for what a typed client never sends. */
async function raw(path: string, payload: string | Buffer, replies: number): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    let buf = '';
    const out: unknown[] = [];
    s.on('data', (c) => {
      buf += c.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        out.push(JSON.parse(buf.slice(0, nl)));
        buf = buf.slice(nl + 1);
        if (out.length >= replies) {
          s.destroy();
          resolve(out);
        }
      }
    });
    s.on('error', reject);
    s.on('connect', () => s.write(payload));
  });
}

describe('the agent socket', () => {
  it('is 0600 in a 0700 directory and answers hello with its API version', async () => {
    const t = tempDir();
    cleanups.push(t.remove);
    const running = await start(t.dir);
    expect(statSync(running.server.socketPath).mode & 0o777).toBe(0o600);
    expect(statSync(join(t.dir, 'run')).mode & 0o777).toBe(0o700);
    const c = await client(running);
    expect(c.hello).toMatchObject({ apiVersion: '1.1', agentVersion: 'test', pid: process.pid });
  });

  it('tells a client with a newer major version so, and takes an older minor', async () => {
    const t = tempDir();
    cleanups.push(t.remove);
    const running = await start(t.dir);
    await expect(AgentClient.connect(running.server.socketPath, { apiVersion: '2.0' })).rejects.toMatchObject({
      code: 'TANDEM_AGENT_VERSION',
      fault: 'user',
    });
    const c = await AgentClient.connect(running.server.socketPath, { apiVersion: '1.7' });
    c.close();
  });

  it('answers bad input with typed errors and keeps serving', async () => {
    const t = tempDir();
    cleanups.push(t.remove);
    const running = await start(t.dir);
    const path = running.server.socketPath;
    const replies = await raw(
      path,
      [
        'not json',
        JSON.stringify({ id: 1, method: 'status' }),
        JSON.stringify({ id: 2, method: 'nope' }),
        JSON.stringify({ id: 3, method: 'hello', params: { apiVersion: 'x' } }),
        JSON.stringify({ id: 4, method: 'hello', params: { apiVersion: '1.0' } }),
        JSON.stringify({ id: 5, method: 'lock', params: { workspace: 7 } }),
        '',
      ].join('\n'),
      6,
    );
    expect(replies).toEqual([
      { id: null, error: expect.objectContaining({ code: 'TANDEM_AGENT_PROTOCOL', retryable: false }) },
      {
        id: 1,
        error: expect.objectContaining({
          code: 'TANDEM_AGENT_PROTOCOL',
          message: expect.stringContaining('hello first'),
        }),
      },
      { id: 2, error: expect.objectContaining({ code: 'TANDEM_AGENT_PROTOCOL' }) },
      { id: 3, error: expect.objectContaining({ code: 'TANDEM_AGENT_PROTOCOL' }) },
      { id: 4, result: expect.objectContaining({ apiVersion: '1.1' }) },
      {
        id: 5,
        error: expect.objectContaining({ code: 'TANDEM_AGENT_PROTOCOL', message: expect.stringContaining('lock') }),
      },
    ]);
    const big = Buffer.alloc((1 << 20) + 10, 'a');
    const [oversize] = await raw(path, Buffer.concat([big, Buffer.from('\n')]), 1);
    expect(oversize).toMatchObject({ id: null, error: { code: 'TANDEM_AGENT_PROTOCOL' } });
    const c = await client(running);
    expect((await c.call('status')).version).toBe('test');
  });

  it('runs the session lifecycle and pushes its events, with a replay from the store', async () => {
    const t = tempDir();
    cleanups.push(t.remove);
    const running = await start(t.dir);
    const c = await client(running);
    const file = writeWorkspace(t.dir);
    const up = await c.call('up', { file, adapter: 'mock' });
    expect(up).toMatchObject({ workspace: 'erp', state: 'running', adapter: 'mock', attached: true });
    const live: AnyTandemEvent[] = [];
    await c.subscribe({ types: ['session.transition'] }, (e) => live.push(e));
    expect(await c.call('lock', { workspace: 'erp' })).toMatchObject({ state: 'locked' });
    expect(await c.call('unlock', {})).toMatchObject({ state: 'running' });
    const snap = await c.call('snapshot.create', { name: 'before', description: 'd' });
    expect(snap.name).toBe('before');
    expect((await c.call('snapshot.list', {})).snapshots.map((s) => s.name)).toContain('before');
    expect(await c.call('suspend', { workspace: 'erp' })).toMatchObject({ state: 'suspended' });
    expect(await c.call('resume', {})).toMatchObject({ state: 'running' });
    expect(await c.call('snapshot.revert', { snapshot: 'before' })).toMatchObject({ workspace: 'erp' });
    expect((await c.call('sessions')).sessions).toEqual([
      expect.objectContaining({ workspace: 'erp', attached: true }),
    ]);
    await expect(c.call('lock', { workspace: 'nope' })).rejects.toMatchObject({
      code: 'TANDEM_NOT_FOUND',
      fault: 'user',
    });
    await expect
      .poll(() => live.map((e) => (e.data as { to: string }).to))
      .toEqual(expect.arrayContaining(['locked', 'running', 'suspended']));
    // A late subscriber gets the stored events since a time, each once, then the live ones.
    const replayed: AnyTandemEvent[] = [];
    const r = await AgentClient.connect(running.server.socketPath);
    cleanups.push(() => r.close());
    await r.subscribe({ since: '2000-01-01T00:00:00Z' }, (e) => replayed.push(e));
    await c.call('stop', { force: true });
    await expect
      .poll(() => replayed.some((e) => e.type === 'session.transition' && e.data.to === 'stopped'))
      .toBe(true);
    const stored = running.agent.store.query();
    expect(replayed.map((e) => e.id)).toEqual(stored.map((e) => e.id));
    expect(new Set(replayed.map((e) => e.id)).size).toBe(replayed.length);
    const down = await c.call('down', { workspace: 'erp' });
    expect(down.workspace).toBe('erp');
    expect((await c.call('sessions')).sessions).toEqual([]);
  });

  it('reports activity to its listeners (the documented feed)', async () => {
    const t = tempDir();
    cleanups.push(t.remove);
    const running = await start(t.dir);
    const seen: unknown[] = [];
    running.agent.onActivity((a) => seen.push(a));
    const c = await client(running);
    await c.call('activity', { source: 'tray', idle: true, at: '2026-12-01T09:05:00Z' });
    await c.call('activity', { source: 'tray' });
    expect(seen).toEqual([
      { source: 'tray', idle: true, at: Date.parse('2026-12-01T09:05:00Z') },
      { source: 'tray', at: Date.parse('2026-12-01T09:00:00Z') },
    ]);
  });

  it('re-attaches to a running VM after a restart, in the state it is in, and never starts or stops it', async () => {
    const t = tempDir();
    cleanups.push(t.remove);
    const first = await start(t.dir);
    const c = await client(first);
    const file = writeWorkspace(t.dir, 'erp');
    await c.call('up', { file, adapter: 'mock' });
    await c.call('lock', {});
    writeWorkspace(t.dir, 'crm');
    await c.call('up', { file: join(t.dir, 'crm', 'tandem.workspace.yaml'), adapter: 'mock' });
    await c.call('suspend', { workspace: 'crm' });
    c.close();
    await first.stop();
    const second = await start(t.dir);
    const c2 = await client(second);
    const sessions = (await c2.call('sessions')).sessions;
    expect(sessions.map((s) => [s.workspace, s.state, s.attached])).toEqual([
      ['crm', 'suspended', true],
      ['erp', 'locked', true],
    ]);
    const transitions = second.agent.store.query({ type: 'session.transition', since: new Date(0) });
    // The restart itself moved nothing: the last transitions are the ones before it.
    expect(transitions.at(-1)).toMatchObject({ workspace: 'crm', data: { to: 'suspended' } });
    await c2.call('shutdown');
    await second.stopped;
  });
});
