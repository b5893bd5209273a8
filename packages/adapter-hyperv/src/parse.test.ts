import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  POWERSHELL_OPTIONS,
  type TandemError,
  encodePowerShellCommand,
  windowsCommandLine,
  type CommandResult,
} from '@tandem/core';
import { fixture } from './fake.test-helper.js';
import {
  asList,
  guid,
  hyperVStatesFor,
  mapHyperVState,
  parseJson,
  parsePsDate,
  parsePsErrorText,
  parseTandemError,
} from './parse.js';
import { mapPsError } from './pwsh.js';
import { desktopRdp, enhancedSessionRdp, parseRdpFile, rdpFile, remoteAppRdp } from './rdp.js';
import { HYPERV_SCRIPTS, encodeScriptInput } from './scripts.js';
import { toSnapshots } from './snapshots.js';
import { toVmInfo } from './vm.js';

const require = createRequire(import.meta.url);
const render = require('../test/fake/render.js') as { ps51(v: unknown): string };

describe('ConvertTo-Json output', () => {
  it('reads Get-VM as Windows PowerShell 5.1 prints it: enum numbers, \\/Date()\\/ dates, escaped quotes', () => {
    const vms = asList(parseJson(fixture('ps51/list.json'))).map(toVmInfo);
    expect(vms).toEqual([
      { name: 'legacy-erp', id: '5d2a3b1c-7e8f-4a9b-8c0d-1e2f3a4b5c6d', state: 'running', memoryMiB: 2048, cpus: 2 },
      {
        name: "build 'agent' <2>",
        id: '0b9c8d7e-6f5a-4b3c-9d2e-1f0a9b8c7d6e',
        state: 'stopped',
        memoryMiB: 1024,
        cpus: 1,
      },
    ]);
    const first = asList(parseJson(fixture('ps51/list.json')))[0]!;
    expect(parsePsDate(first['CreationTime'])).toBe('2023-11-14T22:13:20.000Z');
  });

  it('reads Get-VM as PowerShell 7 prints it: ISO dates with offsets', () => {
    const raw = asList(parseJson(fixture('ps7/list.json')));
    expect(raw.map(toVmInfo).map((v) => v.state)).toEqual(['running', 'saved']);
    expect(parsePsDate(raw[0]!['CreationTime'])).toBe('2023-11-14T22:13:20.000Z');
    expect(parsePsDate(raw[1]!['CreationTime'])).toBe('2023-11-13T23:13:20.512Z');
  });

  it('accepts the single-object form PowerShell prints for a one-item pipeline', () => {
    expect(asList(parseJson(fixture('ps51/get-vm-single.json'))).map(toVmInfo)).toEqual([
      { name: 'legacy-erp', id: '5d2a3b1c-7e8f-4a9b-8c0d-1e2f3a4b5c6d', state: 'paused', memoryMiB: 2048, cpus: 2 },
    ]);
    expect(asList(parseJson(''))).toEqual([]);
    expect(guid({ Guid: 'ABC' })).toBe('abc');
  });

  it('reads checkpoint trees with null parents, duplicate names and the current one', () => {
    const snaps = toSnapshots(parseJson(fixture('ps51/snapshots.json')));
    expect(snaps.map((s) => [s.name, s.parentId?.slice(0, 4) ?? null, s.current, s.vmState])).toEqual([
      ['base install', null, false, 'stopped'],
      ['erp 3.1 (running)', '1a2b', true, 'running'],
      ['base install', '1a2b', false, 'paused'],
    ]);
    expect(snaps[1]?.createdAt).toBe('2023-11-14T23:13:20.000Z');
    expect(toSnapshots(parseJson(fixture('ps51/snapshots-none.json')))).toEqual([]);
    expect(toSnapshots(parseJson(fixture('ps7/snapshots-none.json')))).toEqual([]);
  });

  it('the fake formats exactly like the recorded 5.1 output', () => {
    const back = (text: string): unknown =>
      JSON.parse(text, (_k, v: unknown) =>
        typeof v === 'string' && /^\/Date\(\d+\)\/$/.test(v) ? { $date: Number(/\d+/.exec(v)![0]) } : v,
      );
    for (const f of [
      'ps51/list.json',
      'ps51/get-vm-single.json',
      'ps51/snapshots.json',
      'ps51/snapshots-none.json',
      'ps51/probe.json',
    ]) {
      expect(`${render.ps51(back(fixture(f)))}\r\n`).toBe(fixture(f));
    }
  });

  it('maps every Hyper-V state, by number and by name', () => {
    expect([2, 3, 4, 6, 9, 10, 32773, 32776, 32777, 32779, 32785, 1, 999].map(mapHyperVState)).toEqual([
      'running',
      'stopped',
      'stopping',
      'saved',
      'paused',
      'starting',
      'stopping',
      'stopping',
      'starting',
      'saved',
      'crashed',
      'unknown',
      'unknown',
    ]);
    expect(mapHyperVState('Running')).toBe('running');
    expect(hyperVStatesFor(['stopped'])).toEqual([3]);
  });
});

describe('PowerShell error records', () => {
  const run = (stderr: string): CommandResult => ({ command: 'pwsh', args: [], exitCode: 1, stdout: '', stderr });

  it('reads the records Tandem scripts print and maps them to typed errors', () => {
    expect(parseTandemError(fixture('errors/tandem-invalid-state.txt'))).toMatchObject({
      fullyQualifiedErrorId: 'Tandem.InvalidState',
      state: 6,
    });
    const state = mapPsError(run(fixture('errors/tandem-invalid-state.txt')), 'Suspend', 'vm');
    expect(state.code).toBe('TANDEM_INVALID_STATE');
    expect(state.details['current']).toBe('saved');
    expect(mapPsError(run(fixture('errors/tandem-not-found.txt')), 'Read', 'ghost').code).toBe('TANDEM_NOT_FOUND');
    const perm = mapPsError(run(fixture('errors/tandem-permission.txt')), 'List', undefined);
    expect(perm.code).toBe('TANDEM_AUTH');
    expect(perm.message).toMatch(/Run PowerShell elevated.*Hyper-V Administrators/);
    expect(mapPsError(run(fixture('errors/tandem-module-missing.txt')), 'Probe').code).toBe('TANDEM_HOST');
  });

  it("reads PowerShell's own error text (5.1 NormalView and 7 ConciseView)", () => {
    expect(parsePsErrorText(fixture('errors/ps51-not-found.txt'))).toEqual({
      fullyQualifiedErrorId: 'InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM',
      category: 'InvalidArgument',
      exceptionType: 'VirtualizationException',
      message: 'Hyper-V was unable to find a virtual machine with name "ghost".',
    });
    const cases: [string, string][] = [
      ['errors/ps51-not-found.txt', 'TANDEM_NOT_FOUND'],
      ['errors/ps51-permission.txt', 'TANDEM_AUTH'],
      ['errors/ps51-module-missing.txt', 'TANDEM_HOST'],
      ['errors/ps51-invalid-state.txt', 'TANDEM_INVALID_STATE'],
      ['errors/ps7-concise-not-found.txt', 'TANDEM_NOT_FOUND'],
    ];
    for (const [f, code] of cases) {
      const e: TandemError = mapPsError(run(fixture(f)), 'Test', 'ghost');
      expect([f, e.code]).toEqual([f, code]);
      expect(e.details['output']).toBe(fixture(f));
    }
    expect(mapPsError(run('something odd'), 'Test').code).toBe('TANDEM_HYPERVISOR');
  });
});

const LONE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

describe('scripts and their input', () => {
  it('every script fits the command line cmd.exe accepts over SSH, and goes as bare words', () => {
    for (const [op, script] of Object.entries(HYPERV_SCRIPTS)) {
      const line = windowsCommandLine('cmd', 'powershell.exe', [
        ...POWERSHELL_OPTIONS,
        encodePowerShellCommand(script),
      ]);
      expect([op, line.startsWith('powershell.exe -NoLogo')]).toEqual([op, true]);
      expect(line.length).toBeLessThan(8191);
    }
  });

  it('scripts never contain data: values travel on stdin as key=base64 lines', () => {
    const prelude = /\$l -match '([^']+)'/.exec(HYPERV_SCRIPTS.start)?.[1];
    expect(prelude).toBe('^([A-Za-z0-9]+)=([A-Za-z0-9+/=]*)\\r?$');
    const re = new RegExp(prelude!);
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.stringMatching(/^[A-Za-z0-9]{1,8}$/),
          fc.string({ unit: 'binary' }).filter((v) => !LONE.test(v)),
        ),
        (values) => {
          const decoded: Record<string, string> = {};
          for (const line of encodeScriptInput(values).split('\n')) {
            const m = re.exec(line);
            if (m) decoded[m[1]!] = Buffer.from(m[2]!, 'base64').toString('utf8');
          }
          expect(decoded).toEqual({ ...values });
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('.rdp files', () => {
  it('writes RemoteApp, desktop and enhanced-session connections', () => {
    const app = parseRdpFile(
      remoteAppRdp({
        address: '172.20.113.45',
        program: 'C:\\Program Files\\ERP\\erp.exe',
        args: ['--open', 'a "b"'],
        name: 'erp',
        workingDirectory: 'C:\\ERP',
        user: { username: 'u', domain: 'CORP' },
      }),
    );
    expect(app.get('remoteapplicationmode')).toBe('1');
    expect(app.get('remoteapplicationprogram')).toBe('C:\\Program Files\\ERP\\erp.exe');
    expect(app.get('remoteapplicationcmdline')).toBe('--open "a \\"b\\""');
    expect(app.get('username')).toBe('u');
    expect(parseRdpFile(enhancedSessionRdp({ host: 'hv01', vmId: 'abc' })).get('pcb')).toBe('abc;EnhancedMode=1');
    expect(parseRdpFile(desktopRdp({ address: '10.0.0.5' })).get('full address')).toBe('10.0.0.5');
    // Without a policy every redirection is written, and off.
    for (const rdp of [desktopRdp({ address: 'a' }), enhancedSessionRdp({ host: 'h', vmId: 'v' })]) {
      const s = parseRdpFile(rdp);
      expect([
        s.get('redirectclipboard'),
        s.get('redirectdrives'),
        s.get('redirectprinters'),
        s.get('audiomode'),
      ]).toEqual(['0', '0', '0', '2']);
    }
  });

  it('refuses a value with a line break, which would add a setting of its own', () => {
    expect(() => rdpFile([['full address', 's', 'x\r\nalternate shell:s:cmd.exe']])).toThrowError(/line break/);
    expect(() => remoteAppRdp({ address: 'x', program: 'a\nb', name: 'n' })).toThrowError(/line break/);
  });
});
