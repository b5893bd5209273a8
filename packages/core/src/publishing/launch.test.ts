import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../clock.js';
import { EventBus } from '../events/bus.js';
import type { AnyTandemEvent } from '../events/types.js';
import { PolicyEngine } from '../policy/engine.js';
import { SessionManager } from '../session/manager.js';
import { MockAdapter } from '../testing/mock-adapter.js';
import { parseWorkspace } from '../workspace/load.js';
import { launchApp } from './launch.js';

const yaml = (dataTransfer: string, osFamily = 'linux') => `
apiVersion: tandem/v1
kind: Workspace
metadata: { name: legacy-erp, version: 3.2.0 }
spec:
  image: { source: ./erp.qcow2, format: qcow2 }
  hardware: { memory: { fixedMiB: 512 } }
  guestOs: ${osFamily}
  display: { mode: seamless, frameColor: "#d9534f" }
  publishedApps:
    - { id: erp, name: Legacy ERP, command: /opt/erp/bin/erp, args: [--fast], fileTypes: [.erp] }
  dataTransfer: ${dataTransfer}
`;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-launch-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function setup(dataTransfer = '[]', osFamily = 'linux') {
  const clock = new VirtualClock(Date.parse('2026-12-01T10:00:00Z'));
  const adapter = new MockAdapter({ clock, hostMemoryMiB: 4096 });
  const events = new EventBus({ clock });
  const seen: AnyTandemEvent[] = [];
  events.on('*', (e) => seen.push(e));
  const workspace = parseWorkspace(yaml(dataTransfer, osFamily));
  const session = await new SessionManager({ adapter, events }).open(workspace);
  const policy = new PolicyEngine({ workspace }).forSubject({});
  return { session, policy, events, seen, adapter };
}

describe('launchApp', () => {
  it('starts a stopped session, then launches with the policy, frame and window class in the request', async () => {
    const { session, policy, events, seen } = await setup(
      '[{ channel: clipboard, direction: host-to-guest, action: allow }]',
    );
    const launch = await launchApp({ session, appId: 'erp', policy, events });
    expect(launch.sessionAction).toBe('started');
    expect(session.state).toBe('running');
    expect(launch.request.transfer?.clipboard['host-to-guest'].text).toBe('allow');
    expect(launch.request.transfer?.clipboard['guest-to-host'].text).toBe('deny');
    expect(launch.handle.transport).toBe('xpra');
    expect(launch.handle.argv).toContain('--border=#d9534f,2');
    expect(launch.handle.argv).toContain('--clipboard-direction=to-server');
    expect(launch.frame).toEqual({ color: '#d9534f', drawn: true });
    const decisions = seen.filter((e) => e.type === 'policy.decision' && e.data.kind === 'transfer');
    // Every channel, both directions, each clipboard content type: one explained decision each.
    expect(decisions).toHaveLength(16);
    expect(
      decisions.map((e) => (e.type === 'policy.decision' ? `${e.data.subject}: ${e.data.outcome}` : '')),
    ).toContain('clipboard guest-to-host (text): deny');
    await launch.handle.close();
  });

  it('says when the transport draws no frame, and sets the window class instead', async () => {
    const { session, policy } = await setup();
    await session.start();
    const launch = await launchApp({ session, appId: 'erp', policy, transport: 'rdp-remoteapp' });
    expect(launch.sessionAction).toBeNull();
    expect(launch.frame.drawn).toBe(false);
    expect(launch.frame.note).toMatch(/draws no coloured frame.*tandem-legacy-erp-erp/);
    expect(launch.handle.argv).toContain('/wm-class:tandem-legacy-erp-erp');
    expect(launch.handle.argv).toContain('-clipboard');
  });

  it('resumes a suspended session and unlocks a locked one', async () => {
    const { session, policy } = await setup();
    await session.start();
    await session.suspend();
    expect((await launchApp({ session, appId: 'erp', policy })).sessionAction).toBe('resumed');
    await session.lock();
    let asked = 0;
    const l = await launchApp({ session, appId: 'erp', policy, verifyUnlock: async () => (asked++, true) });
    expect(l.sessionAction).toBe('unlocked');
    expect(asked).toBe(1);
  });

  it('maps host files into the shared folder only when the file policy allows it', async () => {
    const share = join(dir, 'share');
    mkdirSync(join(share, 'Q3'), { recursive: true });
    writeFileSync(join(share, 'Q3', 'report one.erp'), '');
    writeFileSync(join(dir, 'outside.erp'), '');
    symlinkSync(join(dir, 'outside.erp'), join(share, 'link.erp'));
    const allowed = await setup('[{ channel: file, direction: host-to-guest, action: allow }]');
    const sharedFolder = { hostPath: share, guestPath: 'Z:\\' };
    const l = await launchApp({
      ...allowed,
      appId: 'erp',
      files: [join(share, 'Q3', 'report one.erp')],
      sharedFolder,
    });
    expect(l.request.args).toEqual(['--fast', 'Z:\\Q3\\report one.erp']);
    const posix = await launchApp({
      ...allowed,
      appId: 'erp',
      files: [join(share, 'Q3', 'report one.erp')],
      sharedFolder: { hostPath: share, guestPath: '/mnt/host/' },
    });
    expect(posix.request.args).toEqual(['--fast', '/mnt/host/Q3/report one.erp']);
    // A file outside the folder, also through a symbolic link inside it, is refused.
    for (const f of [join(dir, 'outside.erp'), join(share, 'link.erp'), join(share, '..', 'outside.erp')]) {
      await expect(launchApp({ ...allowed, appId: 'erp', files: [f], sharedFolder })).rejects.toMatchObject({
        code: 'TANDEM_INVALID_INPUT',
      });
    }
    const denied = await setup();
    await expect(
      launchApp({ ...denied, appId: 'erp', files: [join(share, 'Q3', 'report one.erp')], sharedFolder }),
    ).rejects.toMatchObject({ code: 'TANDEM_POLICY_DENIED', message: expect.stringMatching(/default deny/) });
  });

  it('names the apps there are when the id is unknown', async () => {
    const { session, policy } = await setup();
    await expect(launchApp({ session, appId: 'nope', policy })).rejects.toThrow(
      /publishes no app "nope" \(it has: erp\)/,
    );
  });
});

describe('launchApp: the policy inside a Windows guest', () => {
  const clip = '[{ channel: clipboard, direction: host-to-guest, action: allow }]';

  it('sets it through the hook before the transport starts, with the resolved permissions', async () => {
    const { session, policy, adapter } = await setup(clip, 'windows');
    const order: string[] = [];
    const launch = adapter.seamless.launch.bind(adapter.seamless);
    adapter.seamless.launch = async (vm, req) => (order.push('transport'), launch(vm, req));
    const result = await launchApp({
      session,
      appId: 'erp',
      policy,
      transport: 'rdp-remoteapp',
      guestPolicy: async (permissions) => {
        order.push('guest');
        expect(permissions.clipboard['host-to-guest'].text).toBe('allow');
        return ['fDisableClip=0'];
      },
    });
    expect(order).toEqual(['guest', 'transport']);
    expect(result.guestPolicy).toEqual(['fDisableClip=0']);
    expect(result.notes.some((n) => n.channel === 'guest')).toBe(false);
  });

  it('says so in a note when it is not given or fails, and refuses the launch when it is required', async () => {
    const { session, policy, adapter } = await setup(clip, 'windows');
    const without = await launchApp({ session, appId: 'erp', policy, transport: 'rdp-remoteapp' });
    expect(without.guestPolicy).toBeNull();
    expect(without.notes).toContainEqual({
      channel: 'guest',
      note: expect.stringMatching(/no guest agent connection/),
    });

    const failing = async (): Promise<readonly string[]> => {
      throw new Error('the agent did not answer');
    };
    const noted = await launchApp({ session, appId: 'erp', policy, transport: 'rdp-remoteapp', guestPolicy: failing });
    expect(noted.notes).toContainEqual({ channel: 'guest', note: expect.stringMatching(/the agent did not answer/) });

    let launched = 0;
    const launch = adapter.seamless.launch.bind(adapter.seamless);
    adapter.seamless.launch = async (vm, req) => (launched++, launch(vm, req));
    await expect(
      launchApp({
        session,
        appId: 'erp',
        policy,
        transport: 'rdp-remoteapp',
        guestPolicy: failing,
        guestPolicyRequired: true,
      }),
    ).rejects.toMatchObject({ code: 'TANDEM_POLICY_DENIED', message: expect.stringMatching(/does not start/) });
    expect(launched).toBe(0);
  });

  it('is not asked for a Linux guest', async () => {
    const { session, policy } = await setup(clip, 'linux');
    let asked = false;
    const result = await launchApp({ session, appId: 'erp', policy, guestPolicy: async () => ((asked = true), []) });
    expect(asked).toBe(false);
    expect(result.guestPolicy).toBeNull();
  });
});
