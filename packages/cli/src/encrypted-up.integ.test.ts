// An encrypted workspace through the `tandem` command on a real libvirtd with QEMU (issue 11),
// each command its own process: keys made, packed encrypted, published, sealed for this device,
// pulled with the envelope into a LUKS qcow2, started with `tandem up` (the disk key handed to
// libvirt as a private, ephemeral secret), refused without an envelope. Then the key-leak search:
// the data key and the disk key, raw and in hex, base64 and base64url, are looked for in the argv
// and environment of every process spawned during the flow (each tool the CLI runs goes through a
// recording shim, and /proc/*/cmdline and /proc/*/environ of every process are sampled during
// the start, QEMU's included), the event store, the logs (the commands' output, libvirt's log of
// the VM), the state and install directories and libvirt's secret directories.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diskKeyFor } from '@tandem/core';
import { DataKey } from '@tandem/core/crypto';
import { integrationGate } from '@tandem/core/testing';
import { filesUnder, keyForms, keyLeaks, recordingShims, sampleProcesses } from './key-leak.test-helper.js';

const run = promisify(execFile);
const URI = 'qemu:///system';
const BIN = fileURLToPath(new URL('../bin/tandem.js', import.meta.url));
const MIB = 1024 * 1024;

const gate = await integrationGate(
  'libvirt/QEMU with qemu-nbd (tandem up of an encrypted workspace)',
  async () => {
    try {
      await run('virsh', ['-c', URI, 'version', '--daemon']);
      await run('qemu-img', ['--version']);
      await run('qemu-nbd', ['--version']);
    } catch (err) {
      return `virsh cannot reach libvirtd at ${URI}, or qemu-img/qemu-nbd is missing (${String((err as Error).message).trim()})`;
    }
    return null;
  },
  'as root, install libvirt-daemon-system, libvirt-clients, qemu-system-x86 and qemu-utils and start virtlogd and libvirtd (bash .ci/run does)',
);

describe.skipIf(!gate.enabled)('tandem up of an encrypted workspace on qemu:///system', () => {
  const name = `cli-enc-${randomBytes(3).toString('hex')}`;
  const vm = `tandem-${name}`;
  let dir: string;
  let shims: string;
  const argvLog = (): string => join(dir, 'argv.log');
  const outputs: string[] = [];

  async function tandem(...args: string[]): Promise<{ code: number; json: any; stderr: string }> {
    const env = { ...process.env, PATH: `${shims}:${process.env['PATH'] ?? ''}` };
    let r: { code: number; stdout: string; stderr: string };
    try {
      const ok = await run(process.execPath, [BIN, '--state-dir', join(dir, 'state'), '--json', '--verbose', ...args], {
        timeout: 180_000,
        env,
      });
      r = { code: 0, stdout: ok.stdout, stderr: ok.stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      r = { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
    outputs.push(r.stdout, r.stderr);
    let json: unknown;
    // One JSON document, or (pull) JSON lines of progress before it.
    const lines = r.stdout.split('\n');
    const from = lines.lastIndexOf('{');
    try {
      json = JSON.parse(from > 0 ? lines.slice(from).join('\n') : r.stdout);
    } catch {
      json = undefined;
    }
    return { code: r.code, json, stderr: r.stderr };
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tandem-cli-enc-'));
    await chmod(dir, 0o755); // QEMU runs as libvirt-qemu and must reach the image
    shims = join(dir, 'shims');
    await mkdir(shims);
    await recordingShims(shims, argvLog());
  });

  afterAll(async () => {
    await run('virsh', ['-c', URI, 'destroy', vm]).catch(() => undefined);
    await run('virsh', ['-c', URI, 'undefine', vm, '--nvram']).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('pulls with an envelope and starts on QEMU; no key byte reaches argv, environment, events, logs or files', async () => {
    const admin = join(dir, 'admin');
    const state = join(dir, 'state');
    const install = join(dir, 'install');
    const ws = join(dir, 'ws');
    await mkdir(join(ws, 'images'), { recursive: true });
    const disk = Buffer.alloc(16 * MIB);
    randomBytes(MIB).copy(disk, 0);
    await writeFile(join(ws, 'images', 'disk.img'), disk);
    await writeFile(
      join(ws, 'tandem.workspace.yaml'),
      [
        'apiVersion: tandem/v1',
        'kind: Workspace',
        `metadata: { name: ${name}, version: 1.0.0 }`,
        'spec:',
        '  image: { source: ./images/disk.img, format: raw }',
        '  guestOs: other',
        '  hardware: { memory: { fixedMiB: 64 }, cpus: 1 }',
        '  network: { mode: none }',
        '',
      ].join('\n'),
    );
    await mkdir(admin, { recursive: true, mode: 0o700 });
    const keyFile = join(admin, 'image.key');
    const authority = join(admin, 'authority.pem');
    const repoKeys = join(admin, 'repo-keys');
    const repo = join(dir, 'repo');
    const step = async (...args: string[]): Promise<any> => {
      const r = await tandem(...args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      return r.json;
    };
    await step('keys', 'image', 'new', '--image', name, '--out', keyFile);
    await step('keys', 'authority', 'new', '--out', authority);
    await step(
      'pack',
      join(ws, 'tandem.workspace.yaml'),
      '--out',
      join(dir, 'pkg.tandem'),
      '--encrypt',
      '--key',
      keyFile,
    );
    await step('repo', 'init', repo, '--keys', repoKeys);
    await step('push', join(dir, 'pkg.tandem'), repo, '--keys', repoKeys, '--channel', 'stable');
    const device = (await step('keys', 'device', 'show')).publicKey as string;
    await step('keys', 'trust', `${authority}.pub`);
    const envelope = join(dir, 'image.envelope');
    await step(
      'keys',
      'seal',
      '--key',
      keyFile,
      '--authority-key',
      authority,
      '--device',
      device,
      '--not-after',
      'P1D',
      '--out',
      envelope,
    );
    const pulled = await step(
      'pull',
      repo,
      name,
      '--root',
      join(repoKeys, 'root.json'),
      '--dir',
      install,
      '--envelope',
      envelope,
      '--luks-iter-time',
      '10',
    );
    const workspaceFile = pulled.workspaceFile as string;

    // No envelope in the state directory and none given: refused, nothing defined or started.
    const none = await tandem('up', workspaceFile, '--adapter', 'libvirt', '--adapter-option', 'virtType=qemu');
    expect(none.code).toBe(4);
    expect(none.json.error.code).toBe('TANDEM_KEY_UNAVAILABLE');
    await expect(run('virsh', ['-c', URI, 'domstate', vm])).rejects.toThrow();

    // The start, with every process sampled while it runs.
    const sampler = sampleProcesses();
    const up = await tandem(
      'up',
      workspaceFile,
      '--adapter',
      'libvirt',
      '--adapter-option',
      'virtType=qemu',
      '--envelope',
      envelope,
    );
    const seen = await sampler.stop();
    expect(up.code, up.stderr).toBe(0);
    expect(up.json).toMatchObject({ vm, adapter: 'libvirt', state: 'running' });
    expect((await run('virsh', ['-c', URI, 'domstate', vm])).stdout.trim()).toBe('running');
    // The disk secret was ephemeral and is gone once QEMU opened the disk.
    const secrets = (await run('virsh', ['-c', URI, 'secret-list'])).stdout;
    expect(secrets).not.toContain(vm);
    const events = await tandem('events', '-w', name);
    expect(events.code, events.stderr).toBe(0);

    // The keys, in every form they could leak in.
    const keyText = JSON.parse(await readFile(keyFile, 'utf8')) as { key: string };
    const dataKeyBytes = Buffer.from(keyText.key, 'base64url');
    using dataKey = new DataKey(dataKeyBytes);
    const diskKey = diskKeyFor(dataKey);
    const rawKeys = [dataKeyBytes, diskKey];
    const forms = keyForms(rawKeys);
    // The search finds what it looks for: the administrator's key file holds the key.
    expect(forms.some((f) => keyText.key === f)).toBe(true);

    // The recording worked: the shims saw the secret hand-over, the sampler saw QEMU run.
    const recorded = await readFile(argvLog(), 'utf8');
    expect(recorded).toContain('secret-set-value');
    expect(recorded).toMatch(/qemu-nbd /);
    expect([...seen.cmdlines].some((c) => c.includes('qemu-system') && c.includes(vm))).toBe(true);

    const texts: [string, string][] = [
      ['argv and environment of every tool the CLI ran', recorded],
      ['argv of the processes sampled during the start', [...seen.cmdlines].join('\n')],
      ['environment of the processes sampled during the start', [...seen.environs].join('\n')],
      ["the commands' output (stdout, stderr, --verbose)", outputs.join('\n')],
      ['the event store (tandem events)', JSON.stringify(events.json)],
      ["libvirt's log of the VM", await readFile(`/var/log/libvirt/qemu/${vm}.log`, 'utf8').catch(() => '')],
    ];
    const files = [
      ...(await filesUnder(state)),
      ...(await filesUnder(install)),
      ...(await filesUnder(repo)),
      ...(await filesUnder('/etc/libvirt/secrets')),
      ...(await filesUnder('/run/libvirt/secrets')),
    ];
    expect(files.some((f) => f.endsWith('.sqlite') || f.includes('events'))).toBe(true);
    expect(await keyLeaks(rawKeys, { texts, files })).toEqual([]);
    diskKey.fill(0);
    dataKeyBytes.fill(0);

    expect((await tandem('down', name)).code).toBe(0);
  }, 600_000); // a dozen tandem processes, a pull through qemu-nbd and a QEMU start, on a busy machine

  it('a tandem pull killed mid-pull (SIGKILL) is resumed by the next: only what is missing is fetched', async () => {
    // Runs after the first test: the keys, the trusted authority and the envelope are there.
    const admin = join(dir, 'admin');
    const repo = join(dir, 'repo');
    const repoKeys = join(admin, 'repo-keys');
    const ws = join(dir, 'ws2');
    const big = `${name}-big`;
    await mkdir(join(ws, 'images'), { recursive: true });
    const disk = Buffer.alloc(64 * MIB);
    randomBytes(48 * MIB).copy(disk, 0);
    await writeFile(join(ws, 'images', 'disk.img'), disk);
    await writeFile(
      join(ws, 'tandem.workspace.yaml'),
      `apiVersion: tandem/v1\nkind: Workspace\nmetadata: { name: ${big}, version: 1.0.0 }\nspec:\n  image: { source: ./images/disk.img, format: raw }\n  hardware: { memory: { fixedMiB: 64 } }\n`,
    );
    const keyFile = join(admin, 'big.key');
    const step = async (...args: string[]): Promise<any> => {
      const r = await tandem(...args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      return r.json;
    };
    await step('keys', 'image', 'new', '--image', big, '--out', keyFile);
    await step(
      'pack',
      join(ws, 'tandem.workspace.yaml'),
      '--out',
      join(dir, 'big.tandem'),
      '--encrypt',
      '--key',
      keyFile,
    );
    await step('push', join(dir, 'big.tandem'), repo, '--keys', repoKeys, '--channel', 'stable');
    const device = (await step('keys', 'device', 'show')).publicKey as string;
    const envelope = join(dir, 'big.envelope');
    await step(
      'keys',
      'seal',
      '--key',
      keyFile,
      '--authority-key',
      join(admin, 'authority.pem'),
      '--device',
      device,
      '--not-after',
      'P1D',
      '--out',
      envelope,
    );
    const install = join(dir, 'install-big');
    const args = [
      BIN,
      '--state-dir',
      join(dir, 'state'),
      '--json',
      'pull',
      repo,
      big,
      '--root',
      join(repoKeys, 'root.json'),
      '--dir',
      install,
      '--envelope',
      envelope,
      '--luks-iter-time',
      '10',
      '--parallel',
      '1',
      '--max-range-kib',
      '256',
    ];

    // The first pull is killed once it has fetched over a third of the image.
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let fetchedAtKill = 0;
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const killed = new Promise<void>((resolve, reject) => {
      let buffered = '';
      child.stdout.on('data', (d: Buffer) => {
        buffered += d.toString();
        for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          if (!line.startsWith('{"event":"sync.progress"')) continue;
          const p = JSON.parse(line) as { bytesFetched: number };
          if (p.bytesFetched > 16 * MIB && fetchedAtKill === 0) {
            fetchedAtKill = p.bytesFetched;
            child.kill('SIGKILL');
          }
        }
      });
      child.on('exit', (code, signal) =>
        signal === 'SIGKILL'
          ? resolve()
          : reject(new Error(`the pull ended before it was killed (${code}): ${stderr}`)),
      );
    });
    await killed;
    expect(fetchedAtKill).toBeGreaterThan(16 * MIB);
    await expect(readFile(join(install, 'installed.json'))).rejects.toThrow();

    const again = await step('pull', repo, big, '--dir', install, '--envelope', envelope, '--luks-iter-time', '10');
    expect(again.version).toBe('1.0.0');
    // Kept from the killed pull: at least what it had fetched, less the writes still in flight.
    expect(again.bytesResumed).toBeGreaterThan(8 * MIB);
    expect(again.bytesFetched).toBeLessThan(48 * MIB - again.bytesResumed + MIB);
  }, 600_000);
});
