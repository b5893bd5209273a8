import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../clock.js';
import { EventBus } from '../events/bus.js';
import { PolicyEngine } from '../policy/engine.js';
import { validateWorkspace } from '../workspace/load.js';
import type { WorkspaceInput } from '../workspace/schema.js';
import { TransferAsker, type TransferQuestion } from './ask.js';
import {
  DENY_ALL,
  freeRdpPolicyArgs,
  rdpFilePolicySettings,
  resolveTransferPolicy,
  vboxPolicyCommands,
  windowsGuestPolicy,
  xpraPolicyArgs,
} from './enforcement.js';

type Rules = NonNullable<WorkspaceInput['spec']['dataTransfer']>;

function policy(dataTransfer: Rules) {
  return new PolicyEngine({
    workspace: validateWorkspace({
      apiVersion: 'tandem/v1',
      kind: 'Workspace',
      metadata: { name: 'erp', version: '1.0.0' },
      spec: { image: { source: 'x.qcow2', format: 'qcow2' }, hardware: { memory: { fixedMiB: 512 } }, dataTransfer },
    }),
  }).forSubject({});
}

const ALL_DENIED_XPRA = [
  '--clipboard=no',
  '--clipboard-direction=disabled',
  '--file-transfer=no',
  '--open-files=no',
  '--printing=no',
  '--speaker=disabled',
  '--microphone=disabled',
  '--webcam=no',
  '--open-url=no',
  '--dbus-proxy=no',
];

// From policy to the exact arguments each transport gets.
const TABLE: { name: string; rules: Rules; xpra: string[]; freerdp: string[] }[] = [
  {
    name: 'no rules: everything denied explicitly',
    rules: [],
    xpra: ALL_DENIED_XPRA,
    freerdp: ['-clipboard', '-drives', '-home-drive', '/audio-mode:2'],
  },
  {
    name: 'clipboard host to guest only',
    rules: [{ channel: 'clipboard', direction: 'host-to-guest', action: 'allow' }],
    xpra: ['--clipboard=yes', '--clipboard-direction=to-server', ...ALL_DENIED_XPRA.slice(2)],
    freerdp: ['-clipboard', '-drives', '-home-drive', '/audio-mode:2'],
  },
  {
    name: 'clipboard guest to host only',
    rules: [{ channel: 'clipboard', direction: 'guest-to-host', action: 'allow' }],
    xpra: ['--clipboard=yes', '--clipboard-direction=to-client', ...ALL_DENIED_XPRA.slice(2)],
    freerdp: ['-clipboard', '-drives', '-home-drive', '/audio-mode:2'],
  },
  {
    name: 'clipboard both ways',
    rules: [{ channel: 'clipboard', direction: 'any', action: 'allow' }],
    xpra: ['--clipboard=yes', '--clipboard-direction=both', ...ALL_DENIED_XPRA.slice(2)],
    freerdp: ['+clipboard', '-drives', '-home-drive', '/audio-mode:2'],
  },
  {
    name: 'clipboard text only: no transport filters by type, so the direction stays closed',
    rules: [{ channel: 'clipboard', direction: 'any', action: 'allow', when: { contentType: ['text'] } }],
    xpra: ALL_DENIED_XPRA,
    freerdp: ['-clipboard', '-drives', '-home-drive', '/audio-mode:2'],
  },
  {
    name: 'printing, audio both ways, smart cards, files both ways',
    rules: [
      { channel: 'print', direction: 'guest-to-host', action: 'allow' },
      { channel: 'audio', direction: 'any', action: 'allow' },
      { channel: 'smartcard', direction: 'host-to-guest', action: 'allow' },
      { channel: 'file', direction: 'any', action: 'allow' },
    ],
    xpra: [
      '--clipboard=no',
      '--clipboard-direction=disabled',
      '--file-transfer=yes',
      '--open-files=no',
      '--printing=yes',
      '--speaker=on',
      '--microphone=on',
      '--webcam=no',
      '--open-url=no',
      '--dbus-proxy=no',
    ],
    freerdp: ['-clipboard', '-drives', '-home-drive', '/printer', '/sound', '/microphone', '/smartcard'],
  },
  {
    name: 'a deny above an allow wins (first rule that applies)',
    rules: [
      { channel: 'clipboard', direction: 'guest-to-host', action: 'deny' },
      { channel: 'any', direction: 'any', action: 'allow' },
    ],
    xpra: [
      '--clipboard=yes',
      '--clipboard-direction=to-server',
      '--file-transfer=yes',
      '--open-files=no',
      '--printing=yes',
      '--speaker=on',
      '--microphone=on',
      '--webcam=no',
      '--open-url=no',
      '--dbus-proxy=no',
    ],
    freerdp: ['-clipboard', '-drives', '-home-drive', '/printer', '/sound', '/microphone', '/smartcard'],
  },
  {
    name: 'ask without anyone to ask is deny',
    rules: [{ channel: 'any', direction: 'any', action: 'ask' }],
    xpra: ALL_DENIED_XPRA,
    freerdp: ['-clipboard', '-drives', '-home-drive', '/audio-mode:2'],
  },
];

describe('data-transfer policy to transport arguments', () => {
  it.each(TABLE)('$name', async ({ rules, xpra, freerdp }) => {
    const { permissions } = await resolveTransferPolicy(policy(rules));
    expect(xpraPolicyArgs(permissions).args).toEqual(xpra);
    expect(freeRdpPolicyArgs(permissions).args).toEqual(freerdp);
  });

  it('says where it denied more than the policy because the transport cannot be finer', async () => {
    const { permissions } = await resolveTransferPolicy(
      policy([
        { channel: 'clipboard', direction: 'host-to-guest', action: 'allow' },
        { channel: 'file', direction: 'host-to-guest', action: 'allow' },
      ]),
    );
    expect(xpraPolicyArgs(permissions).notes.map((n) => n.channel)).toEqual(['file']);
    expect(freeRdpPolicyArgs(permissions).notes[0]?.note).toMatch(/no direction: denied both ways/);
  });

  it('RDP files, VirtualBox and the Windows guest policies deny by default too', () => {
    const rdp = new Map(rdpFilePolicySettings(DENY_ALL).settings.map(([k, , v]) => [k, v]));
    expect(rdp.get('redirectclipboard')).toBe(0);
    expect(rdp.get('redirectprinters')).toBe(0);
    expect(rdp.get('redirectdrives')).toBe(0);
    expect(rdp.get('redirectsmartcards')).toBe(0);
    expect(rdp.get('audiomode')).toBe(2);
    expect(rdp.get('audiocapturemode')).toBe(0);
    expect(rdp.get('usbdevicestoredirect')).toBe('');
    expect(vboxPolicyCommands('vm', DENY_ALL).commands).toEqual([
      ['controlvm', 'vm', 'clipboard', 'mode', 'disabled'],
      ['controlvm', 'vm', 'clipboard', 'filetransfers', 'off'],
      ['controlvm', 'vm', 'draganddrop', 'disabled'],
      ['controlvm', 'vm', 'audioin', 'off'],
      ['controlvm', 'vm', 'audioout', 'off'],
    ]);
    const guest = Object.fromEntries(windowsGuestPolicy(DENY_ALL).map((v) => [v.name, v.value]));
    expect(guest).toEqual({
      fDisableClip: 1,
      fDisableCdm: 1,
      fDisableCpm: 1,
      fEnableSmartCard: 0,
      fDisablePNPRedir: 1,
      fDisableAudioCapture: 1,
      fDisableCam: 1,
      fDisableCcm: 1,
      fDisableLPT: 1,
    });
  });

  it('VirtualBox takes the clipboard and drag and drop by direction', async () => {
    const { permissions } = await resolveTransferPolicy(
      policy([
        { channel: 'clipboard', direction: 'guest-to-host', action: 'allow' },
        { channel: 'file', direction: 'host-to-guest', action: 'allow' },
      ]),
    );
    expect(vboxPolicyCommands('vm', permissions).commands.slice(0, 3)).toEqual([
      ['controlvm', 'vm', 'clipboard', 'mode', 'guesttohost'],
      ['controlvm', 'vm', 'clipboard', 'filetransfers', 'off'],
      ['controlvm', 'vm', 'draganddrop', 'hosttoguest'],
    ]);
  });
});

describe('ask decisions', () => {
  const askRules: Rules = [
    { channel: 'clipboard', direction: 'host-to-guest', action: 'ask' },
    { channel: 'print', direction: 'guest-to-host', action: 'allow' },
  ];

  it('reach the integrator as an event with a callback; the answer decides', async () => {
    const events = new EventBus();
    const decided: string[] = [];
    events.on('policy.decision', (e) => decided.push(`${e.data.subject}: ${e.data.outcome}`));
    const asker = new TransferAsker({ clock: new VirtualClock(0), events });
    const asked: string[] = [];
    asker.on('ask', (q) => {
      asked.push(q.subject);
      q.answer(
        q.subject.includes('text') || q.subject.includes('image') || q.subject.includes('files') ? 'allow' : 'deny',
      );
    });
    const { permissions } = await resolveTransferPolicy(policy(askRules), asker.ask);
    expect(asked).toEqual([
      'clipboard host-to-guest (text)',
      'clipboard host-to-guest (image)',
      'clipboard host-to-guest (files)',
    ]);
    expect(xpraPolicyArgs(permissions).args.slice(0, 2)).toEqual([
      '--clipboard=yes',
      '--clipboard-direction=to-server',
    ]);
    expect(decided).toEqual([
      'clipboard host-to-guest (text): allow',
      'clipboard host-to-guest (image): allow',
      'clipboard host-to-guest (files): allow',
    ]);
  });

  it('an unanswered question is denied when the timeout passes (virtual clock)', async () => {
    const clock = new VirtualClock(0);
    const events = new EventBus();
    const reasons: string[] = [];
    events.on('policy.decision', (e) => reasons.push(e.data.reason));
    const asker = new TransferAsker({ clock, timeoutMs: 30_000, events });
    const questions: TransferQuestion[] = [];
    asker.on('ask', (q) => questions.push(q));
    let settled = false;
    const resolving = resolveTransferPolicy(policy(askRules), asker.ask).finally(() => {
      settled = true;
    });
    await clock.waitForSleepers(1);
    await clock.advance(29_999);
    expect(settled).toBe(false);
    for (let i = 0; i < 3; i++) {
      await clock.waitForSleepers(1);
      await clock.advance(30_000);
    }
    const { permissions } = await resolving;
    expect(questions[0]?.deadline).toBe(30_000);
    expect(permissions.clipboard['host-to-guest'].text).toBe('deny');
    expect(permissions.print['guest-to-host']).toBe('allow');
    expect(reasons[0]).toMatch(/no answer within 30000 ms: deny/);
    // A late answer changes nothing.
    questions[0]?.answer('allow');
    expect(reasons).toHaveLength(3);
  });

  it('with no listener an ask is denied at once', async () => {
    const asker = new TransferAsker({ clock: new VirtualClock(0) });
    const { permissions } = await resolveTransferPolicy(policy(askRules), asker.ask);
    expect(permissions.clipboard['host-to-guest'].text).toBe('deny');
  });
});
