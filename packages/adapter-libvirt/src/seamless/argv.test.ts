import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { LaunchRequest } from '@tandem/core';
import { permissionsFrom } from '@tandem/core/publishing';
import { freeRdpArgs } from './freerdp.js';
import { xpraArgs } from './xpra.js';

// Without a policy in the request, every channel is switched off explicitly.
const DENIED_RDP = ['-clipboard', '-drives', '-home-drive', '/audio-mode:2'];
const DENIED_XPRA = [
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

const erp: LaunchRequest = {
  appId: 'erp',
  command: 'C:\\Program Files (x86)\\Légacy "ERP"\\erp.exe',
  args: ['/open', 'D:\\Données\\Q3 report.erp', 'say "hi"', 'trailing\\'],
  workingDirectory: 'C:\\Program Files (x86)\\Légacy "ERP"',
  mode: 'seamless',
  credentials: { username: 'zoë', domain: 'CORP', password: 'pa ss"word' },
};

describe('FreeRDP argv', () => {
  it('FreeRDP 2: each value is one argument, verbatim', () => {
    expect(freeRdpArgs({ host: '192.168.122.35', port: 3389, syntax: 'v2', certificate: 'tofu' }, erp)).toEqual([
      '/v:192.168.122.35:3389',
      '/u:zoë',
      '/d:CORP',
      '/from-stdin',
      '/cert-tofu',
      ...DENIED_RDP,
      '/app:C:\\Program Files (x86)\\Légacy "ERP"\\erp.exe',
      '/app-name:erp',
      '/app-cmd:/open "D:\\Données\\Q3 report.erp" "say \\"hi\\"" trailing\\',
      '/app-workdir:C:\\Program Files (x86)\\Légacy "ERP"',
    ]);
  });

  it('FreeRDP 3: one /app: list with WinPR escapes', () => {
    expect(freeRdpArgs({ host: 'fe80::1', port: 3390, syntax: 'v3', certificate: 'ignore' }, erp)).toEqual([
      '/v:[fe80::1]:3390',
      '/u:zoë',
      '/d:CORP',
      '/from-stdin',
      '/cert:ignore',
      ...DENIED_RDP,
      '/app:program:C:\\\\Program Files (x86)\\\\Légacy \\"ERP\\"\\\\erp.exe,name:erp,cmd:/open \\"D:\\\\Données\\\\Q3 report.erp\\" \\"say \\\\\\"hi\\\\\\"\\" trailing\\\\,workdir:C:\\\\Program Files (x86)\\\\Légacy \\"ERP\\"',
    ]);
  });

  it('never puts the password on the command line', () => {
    for (const syntax of ['v2', 'v3'] as const) {
      const argv = freeRdpArgs({ host: 'h', port: 3389, syntax, certificate: 'tofu' }, erp).join('\n');
      expect(argv).not.toContain('pa ss');
    }
  });

  it('full desktop has no /app', () => {
    const argv = freeRdpArgs(
      { host: 'h', port: 3389, syntax: 'v2', certificate: 'tofu' },
      { ...erp, mode: 'full-desktop', credentials: undefined },
    );
    expect(argv).toEqual(['/v:h:3389', '/cert-tofu', ...DENIED_RDP, '/dynamic-resolution', '/t:erp']);
  });
});

describe('Xpra argv', () => {
  const app: LaunchRequest = {
    appId: 'gimp',
    command: '/opt/Zoë Tools/bin/edit',
    args: ["it's here.png", '$(reboot)', '--flag=a b'],
    workingDirectory: '/home/zoë/My Pictures',
    mode: 'seamless',
    frameColor: '#d9534f',
    credentials: { username: 'zoë' },
  };

  it('builds start with the app as the session child', () => {
    const args = xpraArgs({ host: '10.0.0.5', sshPort: 2222 }, app);
    expect(args).toEqual([
      'start',
      'ssh://zo%C3%AB@10.0.0.5:2222/',
      "--start-child='env' '-C' '/home/zoë/My Pictures' '/opt/Zoë Tools/bin/edit' 'it'\\''s here.png' '$(reboot)' '--flag=a b'",
      '--exit-with-children=yes',
      '--attach=yes',
      '--border=#d9534f,2',
      ...DENIED_XPRA,
    ]);
    // What the guest runs is exactly the intended argv (as Xpra splits it, with shlex).
    const child = args[2]?.slice('--start-child='.length) ?? '';
    const split = execFileSync(
      'python3',
      ['-c', 'import json,shlex,sys; print(json.dumps(shlex.split(sys.stdin.read())))'],
      {
        input: child,
        encoding: 'utf8',
      },
    );
    expect(JSON.parse(split)).toEqual([
      'env',
      '-C',
      '/home/zoë/My Pictures',
      '/opt/Zoë Tools/bin/edit',
      "it's here.png",
      '$(reboot)',
      '--flag=a b',
    ]);
  });

  it('shadows the desktop for full-desktop mode', () => {
    expect(xpraArgs({ host: '10.0.0.5', sshPort: 22 }, { ...app, mode: 'full-desktop' })).toEqual([
      'shadow',
      'ssh://zo%C3%AB@10.0.0.5:22/',
      ...DENIED_XPRA,
    ]);
  });
});

describe("the launch request's policy reaches the argv", () => {
  const clipboardToGuest = permissionsFrom((c, d) => (c === 'clipboard' && d === 'host-to-guest' ? 'allow' : 'deny'));
  const everything = permissionsFrom(() => 'allow');

  it.each([
    ['clipboard host to guest', clipboardToGuest, ['--clipboard=yes', '--clipboard-direction=to-server']],
    ['everything allowed', everything, ['--clipboard=yes', '--clipboard-direction=both']],
  ] as const)('Xpra: %s', (_name, transfer, clipboard) => {
    const args = xpraArgs({ host: 'h', sshPort: 22 }, { appId: 'a', command: 'xterm', mode: 'seamless', transfer });
    expect(args.filter((a) => a.startsWith('--clipboard'))).toEqual(clipboard);
  });

  it.each([
    [
      'clipboard host to guest (RDP has no direction: off)',
      clipboardToGuest,
      ['-clipboard', '-drives', '-home-drive', '/audio-mode:2'],
    ],
    [
      'everything allowed',
      everything,
      ['+clipboard', '-drives', '-home-drive', '/printer', '/sound', '/microphone', '/smartcard'],
    ],
  ] as const)('FreeRDP: %s', (_name, transfer, policy) => {
    const args = freeRdpArgs(
      { host: 'h', port: 3389, syntax: 'v2', certificate: 'tofu' },
      { appId: 'a', command: 'C:\\a.exe', mode: 'seamless', transfer, windowClass: 'tandem-erp-a' },
    );
    expect(args).toEqual([
      '/v:h:3389',
      '/cert-tofu',
      ...policy,
      '/wm-class:tandem-erp-a',
      '/app:C:\\a.exe',
      '/app-name:a',
    ]);
  });
});
