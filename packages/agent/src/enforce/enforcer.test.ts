import { TandemError } from '@tandem/core';
import { afterEach, describe, expect, it } from 'vitest';
import { SessionEnforcer, type SessionEnforcerOptions } from './enforcer.js';
import { enforcerSetup, passwordIs, settle } from './enforcer.test-helper.js';
import { MemoryVmOwnership } from './ownership.js';

const HW = 'hardware: { memory: { fixedMiB: 1024 } }';
let running: SessionEnforcer[] = [];
afterEach(async () => {
  await Promise.all(running.map((e) => e.stop()));
  running = [];
});

async function started(spec: string, extra: Partial<SessionEnforcerOptions> = {}, setupOptions = {}) {
  const t = enforcerSetup(spec, setupOptions);
  const session = await t.manager.open(t.loaded);
  const notes: string[] = [];
  const enforcer = new SessionEnforcer({
    session,
    loaded: t.loaded,
    events: t.events,
    desktop: t.desktop,
    credentials: passwordIs('s3cret'),
    location: t.location,
    notify: (summary, body, urgency) => Promise.resolve(notes.push(`${urgency}: ${summary}: ${body}`)),
    ...extra,
  });
  running.push(enforcer);
  await enforcer.beforeStart();
  await session.start();
  enforcer.start();
  await t.clock.waitForSleepers();
  return { ...t, session, enforcer, notes };
}

describe('idle lock', () => {
  it("locks after the workspace's idleLock without activity; activity from the API starts the period again", async () => {
    const t = await started(`${HW}\n  usage: { idleLock: PT10M }`);
    await t.clock.advance(9 * 60_000);
    expect(t.session.state).toBe('running');
    t.enforcer.activity();
    await settle();
    await t.clock.advance(9 * 60_000);
    expect(t.session.state).toBe('running');
    await t.clock.advance(60_000);
    await settle(() => t.session.state === 'locked');
    expect(t.of('session.locked')).toEqual([{ vm: 'tandem-erp', cause: 'idle', reason: 'idle for 600 s' }]);
    expect(await t.adapter.state('tandem-erp')).toBe('running'); // the VM keeps running
  });

  it("follows the desktop's presence: no lock while the desktop says active, the period counts from idle", async () => {
    const t = await started(`${HW}\n  usage: { idleLock: PT10M }`);
    t.desktop.emit('active', 'logind');
    await settle();
    await t.clock.advance(60 * 60_000);
    expect(t.session.state).toBe('running');
    t.desktop.emit('idle', 'screensaver');
    await settle();
    await t.clock.advance(9 * 60_000);
    expect(t.session.state).toBe('running');
    await t.clock.advance(60_000);
    await settle(() => t.session.state === 'locked');
    // Back at the desk: unlocked, and present again, so no idle lock however long.
    t.desktop.emit('active', 'logind');
    await t.enforcer.unlock('s3cret');
    await t.clock.advance(60 * 60_000);
    expect(t.session.state).toBe('running');
  });

  it('unlock checks the password, refuses a wrong one, and waits a growing delay after failures', async () => {
    const t = await started(`${HW}\n  usage: { idleLock: PT1M }`);
    await t.clock.advance(60_000);
    await settle(() => t.session.state === 'locked');
    const code = async (p: Promise<unknown>): Promise<string> =>
      p.then(
        () => 'ok',
        (e: unknown) => (TandemError.is(e) ? e.code : String(e)),
      );
    expect(await code(t.enforcer.unlock('wrong'))).toBe('TANDEM_AUTH');
    expect(await code(t.enforcer.unlock('wrong'))).toBe('TANDEM_AUTH');
    // Two failures in a row: the next attempt waits 2 s, even with the right password.
    expect(await code(t.enforcer.unlock('s3cret'))).toBe('TANDEM_UNLOCK_THROTTLED');
    await t.clock.advance(2_000);
    expect(await code(t.enforcer.unlock('wrong'))).toBe('TANDEM_AUTH');
    await t.clock.advance(2_000);
    // The third failure doubled the delay to 4 s.
    expect(await code(t.enforcer.unlock('s3cret'))).toBe('TANDEM_UNLOCK_THROTTLED');
    await t.clock.advance(2_000);
    expect(await code(t.enforcer.unlock('s3cret'))).toBe('ok');
    expect(t.session.state).toBe('running');
    expect(t.of('auth.failure')).toHaveLength(3);
    expect(t.of('session.unlocked')).toEqual([{ vm: 'tandem-erp', user: 'alice', method: 'local-password' }]);
  });
});

describe('lock on host sleep', () => {
  it('PrepareForSleep(true) locks before the sleep work settles; with suspendOnHostSleep the VM is suspended and resumed on wake', async () => {
    const t = await started(`${HW}\n  usage: { suspendOnHostSleep: true }`);
    await t.desktop.sleep(true);
    expect(t.session.state).toBe('suspended');
    expect(await t.adapter.state('tandem-erp')).toBe('paused');
    expect(t.of('session.locked').map((e) => e.cause)).toEqual(['host-sleep']);
    await t.desktop.sleep(false);
    await settle(() => t.session.state === 'locked'); // back, and still locked
    expect(await t.adapter.state('tandem-erp')).toBe('running');
  });

  it('with lockOnHostSleep false the session is left alone', async () => {
    const t = await started(`${HW}\n  usage: { lockOnHostSleep: false }`);
    await t.desktop.sleep(true);
    expect(t.session.state).toBe('running');
  });
});

describe('session end on logout', () => {
  it('snapshot: takes a snapshot and stops', async () => {
    const t = await started(`${HW}\n  usage: { onSessionEnd: snapshot }`);
    t.desktop.emit('logout', 'login1 session c1 was removed');
    await settle(() => t.of('session.ended').length === 1);
    expect(t.session.state).toBe('stopped');
    expect((await t.adapter.snapshots.list('tandem-erp')).map((s) => s.name)[0]).toMatch(/^session-end-/);
    expect(t.of('session.ended')).toEqual([{ vm: 'tandem-erp', cause: 'logout', action: 'snapshot' }]);
  });

  it('suspend: saves or pauses the VM', async () => {
    const t = await started(`${HW}\n  usage: { onSessionEnd: suspend }`);
    t.desktop.emit('logout', 'closing');
    await settle(() => t.of('session.ended').length === 1);
    expect(t.session.state).toBe('suspended');
  });

  it('a revertible workspace goes back to its baseline', async () => {
    const t = await started(`${HW}\n  usage: { mode: revertible, onSessionEnd: snapshot }`);
    t.desktop.emit('logout', 'closing');
    await settle(() => t.of('session.ended').length === 1);
    expect(t.of('session.ended')[0]!.action).toBe('revert');
    expect(t.of('snapshot.reverted')).toEqual([{ vm: 'tandem-erp', snapshot: 'tandem-baseline' }]);
    expect(t.session.state).toBe('stopped');
  });
});

describe('usage policy while running', () => {
  it('expiry: warns (event and critical notification), locks at the limit, refuses unlock, then stops', async () => {
    const t = await started(
      `${HW}\n  usage: { expiresAt: '2026-11-23T11:00:00Z', warnBefore: PT15M, stopAfter: PT5M }`,
    );
    await t.clock.advance(44 * 60_000);
    expect(t.of('usage.warning')).toEqual([]);
    await t.clock.advance(60_000);
    await settle(() => t.of('usage.warning').length === 1);
    expect(t.of('usage.warning')[0]).toMatchObject({
      check: 'expiry',
      limitAt: '2026-11-23T11:00:00.000Z',
      remainingMs: 15 * 60_000,
    });
    expect(t.notes).toEqual([
      expect.stringMatching(
        /^critical: erp: the workspace expires: the workspace expiry is reached at 2026-11-23T11:00:00.000Z/,
      ),
    ]);
    await t.clock.advance(15 * 60_000);
    await settle(() => t.session.state === 'locked');
    expect(t.of('usage.limit')).toEqual([expect.objectContaining({ check: 'expiry', action: 'lock' })]);
    await expect(t.enforcer.unlock('s3cret')).rejects.toMatchObject({ code: 'TANDEM_POLICY_DENIED' });
    await t.clock.advance(5 * 60_000);
    await settle(() => t.session.state === 'stopped');
    expect(t.of('usage.limit').map((e) => e.action)).toEqual(['lock', 'stop']);
  });

  it('the offline lease of the disk key: refused at start once ended; while running, atLimit stop stops at its end', async () => {
    let notAfter = '2026-11-23T10:30:00Z';
    const t = await started(`${HW}\n  usage: { atLimit: stop }`, { leaseNotAfter: () => notAfter });
    await t.clock.advance(15 * 60_000);
    await settle(() => t.of('usage.warning').length === 1);
    expect(t.of('usage.warning')[0]!.check).toBe('lease');
    await t.clock.advance(15 * 60_000);
    await settle(() => t.session.state === 'stopped');
    expect(t.of('usage.limit')).toEqual([expect.objectContaining({ check: 'lease', action: 'stop' })]);
    await expect(t.enforcer.beforeStart()).rejects.toMatchObject({ code: 'TANDEM_LEASE' });
    notAfter = '2026-11-30T00:00:00Z'; // a new envelope
    await t.enforcer.beforeStart();
  });

  it('the offline limit counts from the last online check', async () => {
    const t = await started(
      `${HW}\n  usage: { offline: { allowed: true, maxDuration: PT2H }, atLimit: lock }`,
      {},
      { usageState: () => ({ online: false, lastOnlineCheckAt: '2026-11-23T09:00:00Z' }) },
    );
    await t.clock.advance(60 * 60_000);
    await settle(() => t.session.state === 'locked');
    expect(t.of('usage.warning')[0]!.check).toBe('offline');
    expect(t.of('usage.limit')).toEqual([expect.objectContaining({ check: 'offline', action: 'lock' })]);
    await t.clock.advance(60 * 60_000);
    expect(t.session.state).toBe('locked'); // atLimit lock: no stop
  });
});

describe('another host user', () => {
  it('a suspended VM of another user is shut down only after this user confirms, and never attached silently', async () => {
    const t = enforcerSetup(HW);
    const owners = new MemoryVmOwnership();
    const alice = await t.manager.open(t.loaded);
    const aliceEnforcer = new SessionEnforcer({
      session: alice,
      loaded: t.loaded,
      events: t.events,
      credentials: passwordIs('a'),
      location: t.location,
      ownership: owners,
      uid: 1000,
    });
    await aliceEnforcer.beforeStart();
    await alice.start();
    await alice.suspend();
    await alice.close();
    expect(await owners.owner('tandem-erp')).toBe(1000);

    // Bob's agent attaches to the VM in the state Alice left it.
    const asked: unknown[] = [];
    let answer = false;
    const bob = await t.manager.open(t.loaded);
    expect(bob.state).toBe('suspended');
    const bobEnforcer = new SessionEnforcer({
      session: bob,
      loaded: t.loaded,
      events: t.events,
      credentials: passwordIs('b'),
      location: t.location,
      ownership: owners,
      uid: 1001,
      confirmTakeover: (r) => Promise.resolve(asked.push(r) > 0 && answer),
    });
    await expect(bobEnforcer.beforeStart()).rejects.toMatchObject({ code: 'TANDEM_TAKEOVER_REFUSED' });
    expect(await t.adapter.state('tandem-erp')).toBe('paused'); // untouched
    expect(await owners.owner('tandem-erp')).toBe(1000);
    answer = true;
    await bobEnforcer.beforeStart();
    expect(asked).toEqual([
      { vm: 'tandem-erp', previousOwnerUid: 1000, state: 'suspended' },
      { vm: 'tandem-erp', previousOwnerUid: 1000, state: 'suspended' },
    ]);
    expect(await t.adapter.state('tandem-erp')).toBe('stopped');
    expect(await owners.owner('tandem-erp')).toBe(1001);
    expect(t.of('session.takeover').map((e) => e.confirmed)).toEqual([false, true]);
    await bob.start();
    expect(bob.state).toBe('running');
  });

  it('a stopped VM of another user is simply claimed', async () => {
    const t = enforcerSetup(HW);
    const owners = new MemoryVmOwnership();
    await owners.claim('tandem-erp', 1000);
    const s = await t.manager.open(t.loaded);
    const e = new SessionEnforcer({
      session: s,
      loaded: t.loaded,
      events: t.events,
      credentials: passwordIs('b'),
      location: t.location,
      ownership: owners,
      uid: 1001,
    });
    await e.beforeStart();
    expect(await owners.owner('tandem-erp')).toBe(1001);
    expect(t.of('session.takeover')).toEqual([]);
  });
});

describe('network by location and memory by host RAM', () => {
  const NET = `hardware: { memory: { minMiB: 512, maxMiB: 8192, hostFraction: 0.5 } }
  network:
    mode: nat
    profiles:
      - { when: { dnsSuffix: corp.example.com }, mode: bridged, bridge: br0 }
      - { when: { subnet: 10.20.0.0/16 }, mode: host-only }`;
  /** The mock with its live network change on. */
  const LIVE = { capabilities: { liveNetwork: true } };

  it('chooses the network at start and again when the host network changes; memory follows the host RAM at every start', async () => {
    const t = enforcerSetup(NET, { hostMemoryMiB: 4096 });
    t.setLocation({ dnsSuffixes: ['eng.corp.example.com'] });
    const session = await t.manager.open(t.loaded);
    const e = new SessionEnforcer({
      session,
      loaded: t.loaded,
      events: t.events,
      desktop: t.desktop,
      credentials: passwordIs('x'),
      location: t.location,
    });
    running.push(e);
    const first = await e.beforeStart();
    expect(first).toMatchObject({ memoryMiB: 2048, network: { mode: 'bridged', bridge: 'br0', profile: 0 } });
    let vm = (await t.adapter.list())[0]!;
    expect(vm.network).toEqual({ mode: 'bridged', bridge: 'br0' });
    expect(vm.memoryMiB).toBe(2048);
    e.start();
    await t.clock.waitForSleepers();
    // The host moves to another network while the VM is stopped: it is redefined.
    t.setLocation({
      dnsSuffixes: ['home.arpa'],
      defaultRoute: { iface: 'eth0', gateway: '10.20.0.1', subnet: '10.20.4.0/24' },
    });
    t.desktop.emit('network-changed', 'NetworkManager state 70');
    await settle(() => t.of('policy.decision').filter((d) => d.kind === 'network.location').length === 2);
    vm = (await t.adapter.list())[0]!;
    expect(vm.network).toEqual({ mode: 'host-only' });
    const decisions = t.of('policy.decision').filter((d) => d.kind === 'network.location');
    expect(decisions.map((d) => [d.outcome, d.rule])).toEqual([
      ['bridged', 'spec.network.profiles[0]'],
      ['host-only', 'spec.network.profiles[1]'],
    ]);
    // More RAM on the host: the next start sizes the VM anew.
    (t.adapter as unknown as { probe: () => Promise<unknown> }).probe = () =>
      Promise.resolve({ usable: true, adapter: 'mock', version: '1', host: { memoryMiB: 12288, cpus: 8 } });
    const again = await e.beforeStart();
    expect(again).toMatchObject({ memoryMiB: 6144, applied: 'redefined' });
    expect((await t.adapter.list())[0]!.memoryMiB).toBe(6144);
  });

  it('without a desktop event the location is polled on the clock', async () => {
    const t = enforcerSetup(NET);
    const session = await t.manager.open(t.loaded);
    const e = new SessionEnforcer({
      session,
      loaded: t.loaded,
      events: t.events,
      credentials: passwordIs('x'),
      location: t.location,
      pollMs: 30_000,
    });
    running.push(e);
    await e.beforeStart();
    e.start();
    await t.clock.waitForSleepers();
    t.setLocation({ dnsSuffixes: ['corp.example.com'] });
    await t.clock.advance(29_000);
    expect((await t.adapter.list())[0]!.network).toEqual({ mode: 'nat' });
    await t.clock.advance(1_000);
    await settle(() => t.of('policy.decision').filter((d) => d.kind === 'network.location').length === 2);
    expect((await t.adapter.list())[0]!.network).toEqual({ mode: 'bridged', bridge: 'br0' });
  });

  it('a running VM gets the new network at once where the adapter can, and the decision says so', async () => {
    const t = await started(NET, {}, LIVE);
    expect((await t.adapter.list())[0]!.network).toEqual({ mode: 'nat' });
    t.setLocation({ dnsSuffixes: ['corp.example.com'] });
    t.desktop.emit('network-changed', 'x');
    await settle(() => t.of('policy.decision').filter((d) => d.kind === 'network.location').length === 2);
    const last = t.of('policy.decision').filter((d) => d.kind === 'network.location')[1]!;
    expect(last).toMatchObject({ outcome: 'bridged', rule: 'spec.network.profiles[0]' });
    expect(last.reason).toMatch(/applied live/);
    expect(t.session.state).toBe('running');
    expect((await t.adapter.list())[0]!.network).toEqual({ mode: 'bridged', bridge: 'br0' });
    expect(t.adapter.calls.filter((c) => c.op === 'setNetwork' && c.outcome === 'ok')).toHaveLength(1);
    expect(t.adapter.calls.some((c) => c.op === 'stop')).toBe(false);
    // Back home: switched again, live; the next start finds nothing to redefine.
    t.setLocation({ dnsSuffixes: ['home.arpa'] });
    t.desktop.emit('network-changed', 'y');
    await settle(() => t.of('policy.decision').filter((d) => d.kind === 'network.location').length === 3);
    expect((await t.adapter.list())[0]!.network).toEqual({ mode: 'nat' });
    await t.session.stop();
    expect(await t.enforcer.beforeStart()).toMatchObject({ applied: 'unchanged' });
  });

  it('a live change that fails leaves the VM as it was until its next start, and says why', async () => {
    const t = await started(NET, {}, LIVE);
    t.adapter.faults.failNext('setNetwork', 1);
    t.setLocation({ dnsSuffixes: ['corp.example.com'] });
    t.desktop.emit('network-changed', 'x');
    await settle(() => t.of('policy.decision').filter((d) => d.kind === 'network.location').length === 2);
    const last = t.of('policy.decision').filter((d) => d.kind === 'network.location')[1]!;
    expect(last.reason).toMatch(/live change failed: .*applied at its next start/);
    expect((await t.adapter.list())[0]!.network).toEqual({ mode: 'nat' });
    await t.session.stop();
    await t.enforcer.beforeStart();
    expect((await t.adapter.list())[0]!.network).toEqual({ mode: 'bridged', bridge: 'br0' });
  });

  it('where the adapter cannot change it live, a running VM keeps its network until its next start', async () => {
    const t = await started(NET);
    expect(t.adapter.setNetwork).toBeUndefined();
    t.setLocation({ dnsSuffixes: ['corp.example.com'] });
    t.desktop.emit('network-changed', 'x');
    await settle(() => t.of('policy.decision').filter((d) => d.kind === 'network.location').length === 2);
    const last = t.of('policy.decision').filter((d) => d.kind === 'network.location')[1]!;
    expect(last.reason).toMatch(/cannot change its network live: applied at its next start/);
    expect((await t.adapter.list())[0]!.network).toEqual({ mode: 'nat' });
    await t.session.stop();
    await t.enforcer.beforeStart();
    expect((await t.adapter.list())[0]!.network).toEqual({ mode: 'bridged', bridge: 'br0' });
  });
});

describe('guest maintenance windows', () => {
  const MAINT = `${HW}\n  maintenance: { windows: [{ at: '11:00', duration: PT30M }], timeZone: utc, command: windows-update }`;
  const guest = (ran: string[]) => () =>
    Promise.resolve({
      agent: { software: 't', version: '1', protocol: 1, capabilities: ['exec' as const], ignored: [], instance: 'i' },
      exec: (command: string) => {
        ran.push(command);
        return Promise.resolve({ exitCode: 0, stdout: '', stderr: '', truncated: false });
      },
    });

  it('starts a stopped workspace headless with nobody logged in, runs the guest command, and stops it at the end', async () => {
    const t = enforcerSetup(MAINT);
    const ran: string[] = [];
    const session = await t.manager.open(t.loaded);
    const e = new SessionEnforcer({
      session,
      loaded: t.loaded,
      events: t.events,
      desktop: t.desktop,
      credentials: passwordIs('x'),
      location: t.location,
      guest: guest(ran),
    });
    running.push(e);
    e.start();
    await t.clock.waitForSleepers();
    await t.clock.advance(60 * 60_000);
    await settle(() => ran.length === 1);
    expect(await t.adapter.state('tandem-erp')).toBe('running');
    await t.clock.advance(30 * 60_000);
    await settle(() => t.of('maintenance.window').length === 2);
    expect(await t.adapter.state('tandem-erp')).toBe('stopped');
    expect(t.of('maintenance.window').map((m) => m.phase)).toEqual(['started', 'finished']);
    expect(t.of('maintenance.window')[1]!.reason).toMatch(/ran windows-update \(exit 0\)/);
  });

  it('resumes a suspended workspace and suspends it again; skips while a user is logged in', async () => {
    const t = enforcerSetup(MAINT);
    const ran: string[] = [];
    const session = await t.manager.open(t.loaded);
    await session.start();
    await session.suspend();
    t.desktop.sessions = [{ id: 'c1', uid: 1000, user: 'alice', class: 'user', state: 'active' }];
    const e = new SessionEnforcer({
      session,
      loaded: t.loaded,
      events: t.events,
      desktop: t.desktop,
      credentials: passwordIs('x'),
      location: t.location,
      guest: guest(ran),
    });
    running.push(e);
    e.start();
    await t.clock.waitForSleepers();
    await t.clock.advance(60 * 60_000);
    await settle(() => t.of('maintenance.window').length === 1);
    expect(t.of('maintenance.window')[0]).toMatchObject({ phase: 'skipped' });
    expect(await t.adapter.state('tandem-erp')).toBe('paused');
    // The next day nobody is logged in.
    t.desktop.sessions = [{ id: 'g1', uid: 0, user: 'lightdm', class: 'greeter', state: 'online' }];
    await t.clock.advance(24 * 60 * 60_000);
    await settle(() => ran.length === 1);
    expect(await t.adapter.state('tandem-erp')).toBe('running');
    await t.clock.advance(30 * 60_000);
    await settle(() => t.of('maintenance.window').length === 3);
    expect(await t.adapter.state('tandem-erp')).toBe('paused');
    expect(session.state).toBe('suspended');
  });
});
