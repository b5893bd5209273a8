// The host agent's single sign-on into guests, on the mock hypervisor with a protocol-speaking
// guest agent (core's AgentEndpoint) behind the mock's guest channel: once per guest-agent
// instance, the held password's bytes wiped when the session ends, when replaced and when the
// agent stops, and never in an event.
import type { Duplex } from 'node:stream';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import type { AnyTandemEvent, HypervisorAdapter } from '@tandem/core';
import { AgentEndpoint } from '@tandem/core/guest';
import { MockAdapter } from '@tandem/core/testing';
import { tempDir, writeWorkspace } from './fixtures.test-helper.js';
import { sessionEnforcement } from './enforcement.js';
import { passwordIs } from './enforce/enforcer.test-helper.js';
import { HostAgent } from './host-agent.js';

const LONG = 120_000;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A guest: the mock hypervisor whose guest channels are answered by a guest agent that records sign-ins. */
function guest() {
  const mock = new MockAdapter();
  const signIns: { user: string; password: string }[] = [];
  const ends: Duplex[] = [];
  const newAgent = () =>
    new AgentEndpoint({
      software: 'test-guest-agent',
      version: '1.0.0',
      handlers: {
        'sign-in': async (p) => {
          signIns.push({ user: p!.user, password: p!.password });
          return { user: p!.user, method: 'test', message: `signed in ${p!.user}` };
        },
      },
    });
  let agent = newAgent();
  const adapter = new Proxy(mock, {
    get(target, prop) {
      if (prop === 'guestChannel')
        return {
          open: async (vm: string, o?: { signal?: AbortSignal }) => {
            const host = await target.guestChannel.open(vm, o);
            const end = target.guestEnds(vm).at(-1)!;
            ends.push(end);
            void agent.serve(end);
            return host;
          },
        };
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as HypervisorAdapter;
  return {
    adapter,
    signIns,
    /** The channel drops; the same agent answers again (a lost ping, not a reboot). */
    dropChannel: () => ends.at(-1)?.destroy(),
    /** The guest reboots: a new agent instance answers the next channel. */
    reboot: () => {
      agent = newAgent();
      ends.at(-1)?.destroy();
    },
  };
}

async function agentWith(adapter: HypervisorAdapter, extra = 'spec:\n', o: { unlockPassword?: string } = {}) {
  const tmp = tempDir('tandem-agent-sso-');
  const file = writeWorkspace(tmp.dir, 'erp', extra.replace(/^spec:\n/, ''));
  const events: AnyTandemEvent[] = [];
  const agent = new HostAgent({
    stateDir: join(tmp.dir, 'state'),
    openAdapter: async () => ({ adapter, name: 'mock' }),
    guestSignOn: {
      connection: { backoff: { initialMs: 20, maxMs: 100 }, helloTimeoutMs: 5_000 },
    },
    // The enforcement `tandem agent run` uses, its unlock checking one password (unix_chkpwd is tested on its own).
    ...(o.unlockPassword
      ? { enforcement: sessionEnforcement({ credentials: passwordIs(o.unlockPassword, 'ana'), watchdog: false }) }
      : {}),
  });
  agent.events.on('*', (e) => void events.push(e));
  await agent.start();
  cleanups.push(() => tmp.remove());
  cleanups.push(() => agent.close());
  return { agent, file, events };
}

/** Waits (up to a minute) until `ok` holds. */
async function until(ok: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 60_000;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const count = (events: AnyTandemEvent[], type: string) => events.filter((e) => e.type === type).length;

describe('the host agent signs the user in to the guest (spec.guestSignIn)', () => {
  it(
    'once per guest-agent instance: at the start, not again on a dropped channel or a second hand-over, again after a reboot',
    async () => {
      const g = guest();
      const { agent, file, events } = await agentWith(g.adapter, '  guestSignIn: true\n');
      agent.holdCredentials({ user: 'ana', password: 'pw-of-ana', source: 'login' });
      await agent.up({ file, adapter: 'mock' });
      await until(() => count(events, 'guest.signed-in') === 1, 'the sign-in');
      expect(g.signIns).toEqual([{ user: 'ana', password: 'pw-of-ana' }]);
      expect(events.find((e) => e.type === 'guest.signed-in')).toMatchObject({
        workspace: 'erp',
        data: { user: 'ana', method: 'test' },
      });

      // The channel drops and the same agent says hello again: the same guest boot, no new sign-in.
      g.dropChannel();
      await until(() => count(events, 'guest.connected') === 2, 'the reconnect');
      // An unlock hands the password again while the guest's user is signed in: still once.
      agent.holdCredentials({ user: 'ana', password: 'pw-of-ana', source: 'unlock' });
      // Re-attaching (the agent re-reads a session) is not a new guest boot either.
      await agent.sessions();
      expect(g.signIns).toHaveLength(1);

      // A reboot: a new guest-agent instance signs the user in again, with the password still held.
      g.reboot();
      await until(() => count(events, 'guest.signed-in') === 2, 'the sign-in after the reboot');
      expect(g.signIns).toHaveLength(2);
      expect(JSON.stringify(events)).not.toContain('pw-of-ana');
    },
    LONG,
  );

  it(
    'wipes the held bytes when the session ends, when new ones replace them, and when the agent stops',
    async () => {
      const g = guest();
      const { agent, file, events } = await agentWith(g.adapter, '  guestSignIn: true\n');
      const first = Buffer.from('first-password');
      agent.signOn.hold({ user: 'ana', password: first, source: 'test' });
      const second = Buffer.from('second-password');
      agent.signOn.hold({ user: 'ana', password: second, source: 'test' });
      expect(first.every((b) => b === 0)).toBe(true);
      expect(second.toString()).toBe('second-password');

      await agent.up({ file, adapter: 'mock' });
      await until(() => g.signIns.length === 1, 'the sign-in');
      expect(g.signIns[0]!.password).toBe('second-password');
      // Used, but kept for a reboot while the session runs; the session's end wipes it.
      expect(second.toString()).toBe('second-password');
      await agent.stop({ workspace: 'erp', force: true });
      expect(second.every((b) => b === 0)).toBe(true);
      expect(agent.signOn.heldUser).toBeUndefined();

      const third = Buffer.from('third-password');
      agent.signOn.hold({ user: 'ana', password: third, source: 'test' });
      await agent.close();
      expect(third.every((b) => b === 0)).toBe(true);
      expect(events.filter((e) => e.type === 'credentials.wiped').map((e) => e.data)).toEqual([
        { user: 'ana', reason: 'replaced' },
        { user: 'ana', reason: 'session-ended' },
        { user: 'ana', reason: 'agent-stopped' },
      ]);
      expect(count(events, 'credentials.held')).toBe(3);
    },
    LONG,
  );

  it(
    'without held credentials says so once per guest boot and signs nobody in; a hand-over then signs in',
    async () => {
      const g = guest();
      const { agent, file, events } = await agentWith(g.adapter, '  guestSignIn: true\n');
      await agent.up({ file, adapter: 'mock' });
      await until(() => count(events, 'guest.sign-in-skipped') === 1, 'the skipped event');
      expect(events.find((e) => e.type === 'guest.sign-in-skipped')?.data).toMatchObject({
        reason: expect.stringContaining('no credentials are held'),
      });
      g.dropChannel();
      await until(() => count(events, 'guest.connected') === 2, 'the reconnect');
      expect(count(events, 'guest.sign-in-skipped')).toBe(1);
      expect(g.signIns).toHaveLength(0);
      agent.holdCredentials({ user: 'ana', password: 'late', source: 'login' });
      await until(() => g.signIns.length === 1, 'the sign-in after the hand-over');
    },
    LONG,
  );

  it(
    'an unlock hands the checked password over: a wrong one signs nobody in, the right one signs the user in to the guest',
    async () => {
      const g = guest();
      const { agent, file, events } = await agentWith(g.adapter, '  guestSignIn: true\n', {
        unlockPassword: 'pw-of-ana',
      });
      await agent.up({ file, adapter: 'mock' });
      await until(() => count(events, 'guest.sign-in-skipped') === 1, 'the skipped event');
      await agent.lock({ workspace: 'erp' });

      await expect(agent.unlock({ workspace: 'erp' })).rejects.toMatchObject({ code: 'TANDEM_AUTH' });
      await expect(agent.unlock({ workspace: 'erp', password: 'not-it' })).rejects.toThrow();
      expect(count(events, 'credentials.held')).toBe(0);
      expect((await agent.sessions())[0]?.state).toBe('locked');

      // One failure is free (the throttle delays the second), so the right password goes through at once.
      await agent.unlock({ workspace: 'erp', password: 'pw-of-ana' });
      expect((await agent.sessions())[0]?.state).toBe('running');
      await until(() => g.signIns.length === 1, 'the sign-in after the unlock');
      // The host user whose password the unlock checked (no `tandem login` user is held).
      expect(g.signIns[0]).toEqual({ user: userInfo().username, password: 'pw-of-ana' });
      expect(events.find((e) => e.type === 'credentials.held')?.data).toMatchObject({ source: 'unlock' });
      expect(JSON.stringify(events)).not.toContain('pw-of-ana');
      expect(JSON.stringify(events)).not.toContain('not-it');
    },
    LONG,
  );

  it(
    'leaves workspaces without spec.guestSignIn alone, and refuses empty credentials',
    async () => {
      const g = guest();
      const { agent, file, events } = await agentWith(g.adapter);
      agent.holdCredentials({ user: 'ana', password: 'pw', source: 'login' });
      await agent.up({ file, adapter: 'mock' });
      await agent.sessions();
      expect(count(events, 'guest.connected')).toBe(0);
      expect(g.signIns).toHaveLength(0);
      expect(() => agent.holdCredentials({ user: '', password: 'pw' })).toThrow(/user of the guest sign-in/);
      expect(() => agent.signOn.hold({ user: 'ana', password: Buffer.alloc(0), source: 't' })).toThrow(
        /password of the guest sign-in is empty/,
      );
    },
    LONG,
  );
});
