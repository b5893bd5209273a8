// The real Xpra test: an Xpra server on loopback stands in for a Linux guest (its own Xvfb), and
// the host is another Xvfb. launchApp() resolves the policy and the real Xpra client attaches
// with the arguments Tandem built; the app's window is checked on the host display (xwininfo,
// xprop), its frame colour in a screenshot (xwd), and the client's settings in `xpra info`.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PolicyEngine, SessionManager, parseWorkspace, type HypervisorAdapter, type LaunchHandle } from '@tandem/core';
import { launchApp } from '@tandem/core/publishing';
import { MockAdapter, integrationGate } from '@tandem/core/testing';
import { launchXpraAttach } from './launch.js';

const run = promisify(execFile);
const TOOLS = ['xpra', 'Xvfb', 'xwininfo', 'xprop', 'xwd', 'convert', 'xlogo'];

const gate = await integrationGate(
  'Xpra (real client and server under Xvfb)',
  async () => {
    const missing: string[] = [];
    for (const t of TOOLS) {
      try {
        await run('sh', ['-c', `command -v ${t}`]);
      } catch {
        missing.push(t);
      }
    }
    return missing.length ? `${missing.join(', ')} not installed` : null;
  },
  'apt-get install -y --no-install-recommends xpra xvfb python3-gi-cairo python3-pil x11-utils x11-apps imagemagick',
);

const dir = mkdtempSync(join(tmpdir(), 'tandem-xpra-'));
const children: ChildProcess[] = [];
let display = '';
let port = 0;
let url = '';

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

/** Retries `probe` until it returns a value (no fixed sleeps; the deadline is only a safety net). */
async function until<T>(what: string, probe: () => Promise<T | undefined>, limitMs = 180_000): Promise<T> {
  const end = Date.now() + limitMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end)
      throw new Error(`${what} did not happen (${last instanceof Error ? last.message : 'no result'})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const xenv = (): NodeJS.ProcessEnv => ({ ...process.env, DISPLAY: display, XPRA_SOCKET_DIR: dir });

async function xpraInfo(): Promise<Map<string, string>> {
  const { stdout } = await run('xpra', ['info', url, `--socket-dirs=${dir}`], { env: xenv(), timeout: 60_000 });
  const out = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return out;
}

/** The host display's window with this WM_CLASS instance, as xwininfo lists it. */
async function findWindow(instance: string): Promise<string | undefined> {
  const { stdout } = await run('xwininfo', ['-root', '-tree'], { env: xenv() });
  const m = new RegExp(`^\\s*(0x[0-9a-f]+) .*\\("${instance}" "[^"]*"\\)`, 'mi').exec(stdout);
  return m?.[1];
}

async function pixel(window: string, x: number, y: number): Promise<[number, number, number]> {
  const xwd = join(dir, `${window}.xwd`);
  await run('sh', ['-c', `xwd -silent -id ${window} > '${xwd}'`], { env: xenv() });
  const { stdout } = await run('convert', [`xwd:${xwd}`, '-crop', `1x1+${x}+${y}`, 'txt:-']);
  const m = /\((\d+),(\d+),(\d+)/.exec(stdout.split('\n')[1] ?? '');
  if (!m) throw new Error(`no pixel in ${stdout}`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

function workspace(dataTransfer: string) {
  return parseWorkspace(`
apiVersion: tandem/v1
kind: Workspace
metadata: { name: legacy-erp, version: 3.2.0 }
spec:
  image: { source: ./erp.qcow2, format: qcow2 }
  hardware: { memory: { fixedMiB: 512 } }
  guestOs: linux
  display: { mode: seamless, frameColor: "#d9534f" }
  publishedApps:
    - { id: logo, name: X Logo, command: xlogo, args: [-geometry, 160x120] }
  dataTransfer: ${dataTransfer}
`);
}

/** A session on the mock hypervisor whose seamless transport is the real Xpra client. */
async function session(dataTransfer: string) {
  const mock = new MockAdapter({ hostMemoryMiB: 4096 });
  const seamless = { launch: (_vm: string, req: Parameters<typeof launchXpraAttach>[1]) => launchXpraAttach(url, req) };
  const adapter = new Proxy(mock, {
    get: (t, p) => {
      if (p === 'seamless') return seamless;
      const v = Reflect.get(t, p, t) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  }) as unknown as HypervisorAdapter;
  const ws = workspace(dataTransfer);
  const s = await new SessionManager({ adapter }).open(ws);
  return { session: s, policy: new PolicyEngine({ workspace: ws }).forSubject({}) };
}

async function startXvfb(): Promise<string> {
  const xvfb = spawn('Xvfb', ['-displayfd', '3', '-screen', '0', '1280x800x24', '-nolisten', 'tcp'], {
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
  });
  children.push(xvfb);
  const n = await new Promise<string>((resolve) => xvfb.stdio[3]!.once('data', (d: Buffer) => resolve(d.toString())));
  return `:${n.trim()}`;
}

beforeAll(async () => {
  if (!gate.enabled) return;
  // Two displays, the host's and the "guest's": each Xvfb picks a free number and says it on fd 3.
  display = await startXvfb();
  const guestDisplay = await startXvfb();
  // The Xpra client Tandem starts inherits this process's environment: the host display.
  process.env['DISPLAY'] = display;
  process.env['XPRA_SOCKET_DIR'] = dir;
  port = await freePort();
  url = `tcp://127.0.0.1:${port}/`;
  // The "guest": an Xpra server on loopback with a display of its own.
  const server = spawn(
    'xpra',
    [
      'start',
      guestDisplay,
      '--use-display=yes',
      `--bind-tcp=127.0.0.1:${port}`,
      '--start-new-commands=yes',
      '--daemon=no',
      '--mdns=no',
      '--pulseaudio=no',
      '--notifications=no',
      '--webcam=no',
      '--printing=no',
      '--dbus-launch=',
      '--dbus-proxy=no',
      '--systemd-run=no',
      '--xsettings=no',
      `--socket-dirs=${dir}`,
      `--log-dir=${dir}`,
    ],
    { stdio: 'ignore', detached: true, env: { ...process.env, XPRA_SOCKET_DIR: dir } },
  );
  children.push(server);
  await until('the Xpra server answering', async () => ((await xpraInfo()).size > 0 ? true : undefined));
}, 300_000);

afterAll(async () => {
  // `xpra stop` ends the server and the Xvfb it started in a session of its own.
  if (url)
    await run('xpra', ['stop', url, `--socket-dirs=${dir}`], { env: xenv(), timeout: 60_000 }).catch(() => undefined);
  for (const c of children.reverse()) {
    try {
      if (c.pid) process.kill(-c.pid, 'SIGTERM');
    } catch {
      c.kill('SIGTERM');
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!gate.enabled)('Xpra for real: tandem launches an app into a framed host window', () => {
  let handle: LaunchHandle | undefined;
  afterAll(async () => handle?.close());

  it('the window appears on the host display, in the workspace frame colour, with the clipboard direction Tandem chose', async () => {
    const { session: s, policy } = await session('[{ channel: clipboard, direction: host-to-guest, action: allow }]');
    const launch = await launchApp({ session: s, appId: 'logo', policy });
    handle = launch.handle;
    expect(handle.argv.slice(0, 3)).toEqual(['xpra', 'attach', url]);
    expect(launch.frame.drawn).toBe(true);

    const window = await until('the xlogo window on the host display', () => findWindow('xlogo'));
    const { stdout: props } = await run('xprop', ['-id', window, 'WM_CLASS'], { env: xenv() });
    expect(props).toContain('"xlogo", "XLogo"');

    // Xpra paints the border inside the window at 60 % opacity: #d9534f over black.
    const [r, g, b] = await until('the frame drawn', async () => {
      const p = await pixel(window, 0, 0);
      return p[0] > 100 ? p : undefined;
    });
    const expected = [0xd9, 0x53, 0x4f].map((c) => Math.round(c * 0.6));
    expect(Math.abs(r - expected[0]!)).toBeLessThanOrEqual(4);
    expect(Math.abs(g - expected[1]!)).toBeLessThanOrEqual(4);
    expect(Math.abs(b - expected[2]!)).toBeLessThanOrEqual(4);

    // The running client's settings, as the server reports them.
    const info = await until('the client in xpra info', async () => {
      const i = await xpraInfo();
      return i.get('client.argv')?.includes('--clipboard-direction') ? i : undefined;
    });
    expect(info.get('client.argv')).toContain("'--clipboard-direction=to-server'");
    expect(info.get('client.argv')).toContain("'--border=#d9534f,2'");
    expect(info.get('client.clipboard.enabled')).toBe('True');
    expect(info.get('client.file-transfers.remote.file-transfer')).toBe('False');
    expect(info.get('client.file-transfers.remote.open-url')).toBe('False');

    if (process.env['TANDEM_PUBLISHING_SCREENSHOT']) {
      await run(
        'sh',
        ['-c', `xwd -silent -root | convert xwd:- -crop 420x260+0+0 '${process.env['TANDEM_PUBLISHING_SCREENSHOT']}'`],
        {
          env: xenv(),
        },
      );
    }
  }, 300_000);

  it('a policy that denies the clipboard gives a client with the clipboard off', async () => {
    await handle?.close();
    const { session: s, policy } = await session('[]');
    const launch = await launchApp({ session: s, appId: 'logo', policy });
    handle = launch.handle;
    const info = await until('the new client in xpra info', async () => {
      const i = await xpraInfo();
      return i.get('client.argv')?.includes('--clipboard-direction=disabled') ? i : undefined;
    });
    expect(info.get('client.argv')).toContain("'--clipboard=no'");
    expect(info.get('client.clipboard.enabled')).not.toBe('True');
  }, 300_000);
});
