// `tandem keys` and encrypted workspaces through the CLI: an administrator (one state
// directory) makes a data key and an authority key, packs encrypted and publishes; an endpoint
// (another state directory) shows its device key and pulls with an envelope. Every refusal is a
// typed error with a documented exit code.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliHarness, erpWorkspace } from '../cli-harness.test-helper.js';
import { ExitCode } from '../exit-codes.js';

const CANARY = Buffer.from('TANDEM-CLI-CANARY-0b5e-PLAINTEXT');
const hasQemuNbd = spawnSync('qemu-nbd', ['--version']).status === 0;

describe('tandem keys', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'tandem-cli-keys-'));
  let stateDir = join(tmp, 'endpoint');
  const tandem = cliHarness(() => stateDir);
  const as = async (dir: string, ...args: string[]): ReturnType<typeof tandem> => {
    const before = stateDir;
    stateDir = dir;
    try {
      return await tandem(...args);
    } finally {
      stateDir = before;
    }
  };
  const admin = join(tmp, 'admin');
  const endpoint = join(tmp, 'endpoint');
  const other = join(tmp, 'other-endpoint');
  const repo = join(tmp, 'repo');
  let umask: number;
  let devicePub: string;

  beforeAll(() => {
    umask = process.umask(0o000);
  });
  afterAll(() => {
    process.umask(umask);
  });

  it('keeps the state directory private whatever the umask, for any command', async () => {
    const fresh = join(tmp, 'fresh-state');
    const r = await as(fresh, '--json', 'status');
    expect(r.code).toBe(ExitCode.ok);
    expect(statSync(fresh).mode & 0o777).toBe(0o700);
    const { chmodSync } = await import('node:fs');
    chmodSync(fresh, 0o755);
    await as(fresh, '--json', 'status');
    expect(statSync(fresh).mode & 0o777).toBe(0o700);
  });

  it('makes device keys on first use, private whatever the umask, and prints only the public key', async () => {
    const shown = await tandem('--json', 'keys', 'device', 'show');
    expect(shown.code).toBe(ExitCode.ok);
    expect(shown.json).toMatchObject({ created: true, publicKey: expect.stringMatching(/^tandem-device1:/) });
    devicePub = shown.json.publicKey as string;
    const again = await tandem('--json', 'keys', 'device', 'init');
    expect(again.json).toMatchObject({ created: false, publicKey: devicePub });
    expect(statSync(endpoint).mode & 0o777).toBe(0o700);
    expect(statSync(join(endpoint, 'keys')).mode & 0o777).toBe(0o700);
    for (const f of readdirSync(join(endpoint, 'keys')))
      expect(statSync(join(endpoint, 'keys', f)).mode & 0o777).toBe(0o600);
    const stored = JSON.parse(readFileSync(join(endpoint, 'keys', 'device.json'), 'utf8')) as {
      x25519: { private: string };
      ed25519: { private: string };
    };
    expect(shown.stdout).not.toContain(stored.x25519.private);
    expect(shown.stdout).not.toContain(stored.ed25519.private);
  });

  it('packs encrypted, publishes, and pulls only with a valid envelope', async () => {
    const image = randomBytes(1 << 20);
    for (let at = 1000; at < image.length - 64; at += 70_000) CANARY.copy(image, at);
    const ws = erpWorkspace(join(tmp, 'ws'), '3.2.0', image);
    const key = join(admin, 'erp.key');
    const authority = join(admin, 'authority.pem');
    expect((await as(admin, '--json', 'keys', 'image', 'new', '--image', 'erp', '--out', key)).code).toBe(ExitCode.ok);
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect((await as(admin, '--json', 'keys', 'authority', 'new', '--out', authority)).code).toBe(ExitCode.ok);
    const packed = await as(admin, '--json', 'pack', ws, '--out', join(tmp, 'erp.tandem'), '--encrypt', '--key', key);
    expect(packed.code).toBe(ExitCode.ok);
    expect(packed.stdout).toContain('"encrypted": true');
    expect(readFileSync(join(tmp, 'erp.tandem')).includes(CANARY)).toBe(false);
    const noKey = await as(admin, 'pack', ws, '--out', join(tmp, 'x.tandem'), '--encrypt');
    expect(noKey.code).toBe(ExitCode.invalidInput);
    expect(noKey.stderr).toMatch(/tandem keys image new/);

    const keysDir = join(admin, 'repo-keys');
    expect((await as(admin, 'repo', 'init', repo, '--keys', keysDir)).code).toBe(ExitCode.ok);
    expect(
      (await as(admin, 'push', join(tmp, 'erp.tandem'), repo, '--keys', keysDir, '--channel', 'stable')).code,
    ).toBe(ExitCode.ok);
    const root = join(keysDir, 'root.json');
    const pull = (...extra: string[]): ReturnType<typeof tandem> =>
      tandem('pull', repo, 'erp', '--root', root, '--dir', join(tmp, 'install'), ...extra);

    // No envelope: stops before any chunk, says how to get one.
    const none = await pull();
    expect(none.code).toBe(ExitCode.notFound);
    expect(none.stderr).toMatch(/tandem keys device show/);

    /** `tandem keys seal` of the image's key for `device` into `out`, as the administrator. */
    const seal = (out: string, device: string, ...limits: string[]): ReturnType<typeof tandem> =>
      as(
        admin,
        '--json',
        'keys',
        'seal',
        '--key',
        key,
        '--authority-key',
        authority,
        '--device',
        device,
        ...limits,
        '--out',
        out,
      );
    const envelope = join(tmp, 'erp.envelope');
    const sealed = await seal(envelope, devicePub, '--versions', '>=3.0.0 <4', '--not-after', 'P14D');
    expect(sealed.code).toBe(ExitCode.ok);
    const inspected = await tandem('--json', 'keys', 'inspect', envelope);
    expect(inspected.json).toMatchObject({
      image: 'erp',
      versions: '>=3.0.0 <4',
      forThisDevice: true,
      authorityTrusted: false,
    });
    const keyText = JSON.parse(readFileSync(key, 'utf8')) as { key: string };
    expect(inspected.stdout + sealed.stdout + readFileSync(envelope, 'utf8')).not.toContain(keyText.key);

    // Not trusted yet: refused.
    expect((await pull('--envelope', envelope)).code).toBe(ExitCode.notFound);
    expect((await tandem('keys', 'trust', `${authority}.pub`)).code).toBe(ExitCode.ok);
    // Trusted and valid: the key is released and the image installed encrypted at rest (a
    // LUKS qcow2 through qemu-nbd; without qemu-utils the pull says that tool is missing).
    const ok = await pull('--envelope', envelope, '--luks-iter-time', '10');
    if (hasQemuNbd) {
      expect(ok.stderr).not.toMatch(/tandem:/);
      expect(ok.code).toBe(ExitCode.ok);
      for (const f of readdirSync(join(tmp, 'install'), { recursive: true, withFileTypes: true }))
        if (f.isFile()) expect(readFileSync(join(f.parentPath, f.name)).includes(CANARY)).toBe(false);
    } else expect(ok.code).not.toBe(ExitCode.ok);
    const installedBefore = hasQemuNbd ? readFileSync(join(tmp, 'install', 'installed.json'), 'utf8') : '';

    // Refusals: an envelope for another device, an expired lease, one byte changed.
    const otherPub = (await as(other, '--json', 'keys', 'device', 'show')).json.publicKey as string;
    const forOther = join(tmp, 'other.envelope');
    expect((await seal(forOther, otherPub, '--not-after', 'P1D')).code).toBe(ExitCode.ok);
    const expired = join(tmp, 'expired.envelope');
    expect(
      (await seal(expired, devicePub, '--not-before', '2020-01-01T00:00:00Z', '--not-after', '2020-01-15T00:00:00Z'))
        .code,
    ).toBe(ExitCode.ok);
    const tampered = join(tmp, 'tampered.envelope');
    const text = readFileSync(envelope, 'utf8');
    const at = text.indexOf('"sig": "') + 20;
    const { writeFileSync } = await import('node:fs');
    writeFileSync(tampered, text.slice(0, at) + (text[at] === 'A' ? 'B' : 'A') + text.slice(at + 1));
    const refusals: { file: string; exit: number; message: RegExp }[] = [
      { file: forOther, exit: ExitCode.integrity, message: /not this one/ },
      { file: expired, exit: ExitCode.policyDenied, message: /ended at 2020-01-15/ },
      { file: tampered, exit: ExitCode.integrity, message: /altered or damaged/ },
    ];
    for (const r of refusals) {
      const refused = await pull('--envelope', r.file);
      expect(refused.code, r.file).toBe(r.exit);
      expect(refused.stderr).toMatch(r.message);
    }
    // The installed version is untouched by every refusal.
    if (hasQemuNbd) expect(readFileSync(join(tmp, 'install', 'installed.json'), 'utf8')).toBe(installedBefore);
    else expect(() => statSync(join(tmp, 'install', 'installed.json'))).toThrow();
  });
});
