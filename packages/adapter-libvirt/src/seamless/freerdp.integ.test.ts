// The real FreeRDP test: Debian's xrdp on loopback stands in for a Windows guest (it has no
// RemoteApp, so the full desktop is what can be shown), and the real xfreerdp under Xvfb connects
// with the arguments Tandem built from the policy. xrdp's log says which virtual channels the
// client asked for: the clipboard channel (cliprdr) only when the policy lets the clipboard
// cross both ways.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PolicyEngine, SessionManager, parseWorkspace, type HypervisorAdapter } from '@tandem/core';
import { launchApp } from '@tandem/core/publishing';
import { MockAdapter, integrationGate } from '@tandem/core/testing';
import { launchFreeRdp } from './launch.js';

const run = promisify(execFile);

const gate = await integrationGate(
  'FreeRDP against xrdp',
  async () => {
    const missing: string[] = [];
    for (const t of ['xfreerdp', 'xrdp', 'Xvfb']) {
      try {
        await run('sh', ['-c', `command -v ${t}`]);
      } catch {
        missing.push(t);
      }
    }
    if (!existsSync('/etc/xrdp/xrdp.ini')) missing.push('/etc/xrdp/xrdp.ini');
    return missing.length ? `${missing.join(', ')} not installed` : null;
  },
  'apt-get install -y --no-install-recommends freerdp2-x11 xrdp xvfb',
);

const dir = mkdtempSync(join(tmpdir(), 'tandem-rdp-'));
const log = join(dir, 'xrdp.log');
const children: ChildProcess[] = [];
let port = 0;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

async function until<T>(what: string, probe: () => T | undefined, limitMs = 180_000): Promise<T> {
  const end = Date.now() + limitMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what} did not happen`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function workspace(dataTransfer: string) {
  return parseWorkspace(`
apiVersion: tandem/v1
kind: Workspace
metadata: { name: legacy-erp, version: 3.2.0 }
spec:
  image: { source: ./erp.qcow2, format: qcow2 }
  hardware: { memory: { fixedMiB: 512 } }
  guestOs: windows
  display: { mode: full-desktop, frameColor: "#d9534f" }
  publishedApps:
    - { id: erp, name: Legacy ERP, command: 'C:\\Program Files\\ERP\\erp.exe' }
  dataTransfer: ${dataTransfer}
`);
}

/** Launches through launchApp on a mock session whose transport is the real xfreerdp. */
async function launch(dataTransfer: string) {
  const mock = new MockAdapter({ hostMemoryMiB: 4096 });
  const seamless = {
    launch: (_vm: string, req: Parameters<typeof launchFreeRdp>[1]) =>
      launchFreeRdp({ host: '127.0.0.1', port, syntax: 'v2', certificate: 'ignore' }, req),
  };
  const adapter = new Proxy(mock, {
    get: (t, p) => {
      if (p === 'seamless') return seamless;
      const v = Reflect.get(t, p, t) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  }) as unknown as HypervisorAdapter;
  const ws = workspace(dataTransfer);
  const session = await new SessionManager({ adapter }).open(ws);
  const from = existsSync(log) ? readFileSync(log, 'utf8').length : 0;
  const l = await launchApp({
    session,
    appId: 'erp',
    policy: new PolicyEngine({ workspace: ws }).forSubject({}),
    credentials: { username: 'tandem', password: 'pw-on-stdin-only' },
  });
  // The client's channel list is in xrdp's log once it has connected (drdynvc comes last).
  const channels = await until('the client connecting to xrdp', () => {
    const text = existsSync(log) ? readFileSync(log, 'utf8').slice(from) : '';
    if (!/Adding channel: name drdynvc/.test(text)) return undefined;
    return [...text.matchAll(/Adding channel: name (\w+)/g)].map((m) => m[1]!);
  });
  const cmdline = l.handle.pid ? readFileSync(`/proc/${l.handle.pid}/cmdline`, 'utf8').split('\0') : [];
  await l.handle.close();
  return { launch: l, channels, cmdline };
}

beforeAll(async () => {
  if (!gate.enabled) return;
  const xvfb = spawn('Xvfb', ['-displayfd', '3', '-screen', '0', '1280x800x24', '-nolisten', 'tcp'], {
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
  });
  children.push(xvfb);
  const n = await new Promise<string>((resolve) => xvfb.stdio[3]!.once('data', (d: Buffer) => resolve(d.toString())));
  process.env['DISPLAY'] = `:${n.trim()}`;
  port = await freePort();
  const ini = readFileSync('/etc/xrdp/xrdp.ini', 'utf8')
    .replace(/^port=.*$/m, `port=tcp://127.0.0.1:${port}`)
    .replace(/^LogFile=.*$/m, `LogFile=${log}`)
    .replace(/^LogLevel=.*$/m, 'LogLevel=DEBUG')
    .replace(/^EnableSyslog=.*$/m, 'EnableSyslog=false');
  writeFileSync(join(dir, 'xrdp.ini'), ini);
  const xrdp = spawn('xrdp', ['--nodaemon', '--config', join(dir, 'xrdp.ini')], { stdio: 'ignore' });
  children.push(xrdp);
  await until('xrdp listening', () =>
    existsSync(log) && /listening to port/.test(readFileSync(log, 'utf8')) ? true : undefined,
  );
}, 300_000);

afterAll(() => {
  for (const c of children.reverse()) c.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!gate.enabled)('FreeRDP for real, against xrdp on loopback (full desktop)', () => {
  it('the policy denies the clipboard: the client asks for no clipboard channel', async () => {
    const { launch: l, channels, cmdline } = await launch('[]');
    expect(l.handle.argv).toEqual(expect.arrayContaining(['-clipboard', '-drives', '-home-drive', '/audio-mode:2']));
    expect(channels.length).toBeGreaterThan(0);
    expect(channels).not.toContain('cliprdr');
    // The password went to stdin: the running client's command line does not hold it.
    expect(cmdline).toContain('/from-stdin');
    expect(cmdline.join(' ')).not.toContain('pw-on-stdin-only');
    expect(l.frame.drawn).toBe(false);
  }, 300_000);

  it('the policy allows the clipboard both ways: the client asks for cliprdr', async () => {
    const { launch: l, channels } = await launch('[{ channel: clipboard, direction: any, action: allow }]');
    expect(l.handle.argv).toContain('+clipboard');
    expect(channels).toContain('cliprdr');
  }, 300_000);
});
