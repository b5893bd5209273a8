// `tandem apps launch` for real: the CLI attaches the real Xpra client to an Xpra server on
// loopback (standing in for a Linux guest, under its own Xvfb), and the app's window appears on
// the host's Xvfb in the workspace's frame colour, with the clipboard direction the policy chose.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integrationGate } from '@tandem/core/testing';
import { cliHarness } from '../cli-harness.test-helper.js';

const run = promisify(execFile);
const ADAPTER = join(dirname(fileURLToPath(import.meta.url)), 'xpra-attach-adapter.test-helper.ts');

const gate = await integrationGate(
  'Xpra (real client and server under Xvfb)',
  async () => {
    const missing: string[] = [];
    for (const t of ['xpra', 'Xvfb', 'xwininfo', 'xprop', 'xlogo']) {
      try {
        await run('sh', ['-c', `command -v ${t}`]);
      } catch {
        missing.push(t);
      }
    }
    return missing.length ? `${missing.join(', ')} not installed` : null;
  },
  'apt-get install -y --no-install-recommends xpra xvfb python3-gi-cairo python3-pil x11-utils x11-apps',
);

const dir = mkdtempSync(join(tmpdir(), 'tandem-apps-xpra-'));
const children: ChildProcess[] = [];
let url = '';
const tandem = cliHarness(() => join(dir, 'state'));
const env = (): NodeJS.ProcessEnv => ({ ...process.env, XPRA_SOCKET_DIR: dir });

async function until<T>(what: string, probe: () => Promise<T | undefined>, limitMs = 180_000): Promise<T> {
  const end = Date.now() + limitMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what} did not happen`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function startXvfb(): Promise<string> {
  const xvfb = spawn('Xvfb', ['-displayfd', '3', '-screen', '0', '1280x800x24', '-nolisten', 'tcp'], {
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
  });
  children.push(xvfb);
  const n = await new Promise<string>((resolve) => xvfb.stdio[3]!.once('data', (d: Buffer) => resolve(d.toString())));
  return `:${n.trim()}`;
}

async function xpraInfo(): Promise<Map<string, string>> {
  const { stdout } = await run('xpra', ['info', url, `--socket-dirs=${dir}`], { env: env(), timeout: 60_000 });
  return new Map(
    stdout
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

beforeAll(async () => {
  if (!gate.enabled) return;
  process.env['DISPLAY'] = await startXvfb();
  process.env['XPRA_SOCKET_DIR'] = dir;
  const guest = await startXvfb();
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  url = `tcp://127.0.0.1:${port}/`;
  const server = spawn(
    'xpra',
    [
      'start',
      guest,
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
      `--socket-dirs=${dir}`,
      `--log-dir=${dir}`,
    ],
    { stdio: 'ignore', env: env() },
  );
  children.push(server);
  await until('the Xpra server answering', async () => ((await xpraInfo()).size > 0 ? true : undefined));
}, 300_000);

afterAll(async () => {
  if (url)
    await run('xpra', ['stop', url, `--socket-dirs=${dir}`], { env: env(), timeout: 60_000 }).catch(() => undefined);
  for (const c of children.reverse()) c.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!gate.enabled)('tandem apps launch with the real Xpra client', () => {
  it('shows the app on the host display in the frame colour, with the clipboard going only into the guest', async () => {
    writeFileSync(
      join(dir, 'ws.yaml'),
      `apiVersion: tandem/v1
kind: Workspace
metadata: { name: legacy-erp, version: 3.2.0 }
spec:
  image: { source: ./erp.qcow2, format: qcow2 }
  hardware: { memory: { fixedMiB: 512 } }
  guestOs: linux
  display: { mode: seamless, frameColor: "#d9534f" }
  publishedApps:
    - { id: logo, name: X Logo, command: xlogo }
  dataTransfer:
    - { channel: clipboard, direction: host-to-guest, action: allow }
`,
    );
    const up = await tandem(
      'up',
      join(dir, 'ws.yaml'),
      '--adapter',
      ADAPTER,
      '--adapter-option',
      `stateFile=${join(dir, 'mock.json')}`,
      '--adapter-option',
      `url=${url}`,
      '--no-start',
    );
    expect(up.code, up.stderr).toBe(0);
    const r = await tandem('--json', 'apps', 'launch', 'logo', '--no-wait');
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.sessionAction).toBe('started');
    expect(r.json.argv.slice(0, 2)).toEqual(['xpra', 'attach']);
    expect(r.json.frame).toEqual({ color: '#d9534f', drawn: true });
    try {
      const window = await until('the xlogo window on the host display', async () => {
        const { stdout } = await run('xwininfo', ['-root', '-tree']);
        return /^\s*(0x[0-9a-f]+) .*\("xlogo" "XLogo"\)/m.exec(stdout)?.[1];
      });
      expect((await run('xprop', ['-id', window, 'WM_CLASS'])).stdout).toContain('"xlogo", "XLogo"');
      const info = await until('the client in xpra info', async () => {
        const i = await xpraInfo();
        return i.get('client.argv')?.includes('--clipboard-direction') ? i : undefined;
      });
      expect(info.get('client.argv')).toContain("'--clipboard-direction=to-server'");
      expect(info.get('client.argv')).toContain("'--border=#d9534f,2'");
      expect(info.get('client.file-transfers.remote.file-transfer')).toBe('False');
    } finally {
      if (typeof r.json.pid === 'number') process.kill(r.json.pid, 'SIGTERM');
    }
  }, 300_000);
});
