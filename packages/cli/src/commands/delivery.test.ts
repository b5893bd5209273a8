import { randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ExitCode } from '../exit-codes.js';
import { runCli } from '../program.js';

function workspace(dir: string, version: string, image: Buffer): string {
  mkdirSync(join(dir, 'images'), { recursive: true });
  writeFileSync(join(dir, 'images', 'disk.img'), image);
  const file = join(dir, 'tandem.workspace.yaml');
  writeFileSync(
    file,
    `apiVersion: tandem/v1\nkind: Workspace\nmetadata: { name: erp, version: ${version} }\nspec:\n  image: { source: ./images/disk.img, format: raw }\n  hardware: { memory: { fixedMiB: 512 } }\n`,
  );
  return file;
}

describe('tandem pack, repo init, push, pull', () => {
  let out: string[];
  let err: string[];
  beforeEach(() => {
    out = [];
    err = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (err.push(String(s)), true));
  });
  afterEach(() => vi.restoreAllMocks());

  /** The result document (pretty-printed, after any JSON progress lines). */
  const json = <T>(): T => {
    const lines = out.join('').trim().split('\n');
    return JSON.parse(lines.slice(lines.lastIndexOf('{')).join('\n')) as T;
  };

  it('packs, publishes and installs two versions, the second as a delta, with JSON progress lines', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'tandem-cli-delivery-'));
    const v1 = randomBytes(1 << 20);
    const v2 = Buffer.concat([v1.subarray(0, 500_000), randomBytes(20_000), v1.subarray(500_000)]);
    const repo = join(tmp, 'repo');
    const keys = join(tmp, 'keys');
    expect(await runCli(['--json', 'repo', 'init', repo, '--keys', keys])).toBe(ExitCode.ok);
    for (const [version, image] of [
      ['1.0.0', v1],
      ['2.0.0', v2],
    ] as const) {
      out = [];
      expect(
        await runCli([
          '--json',
          'pack',
          workspace(join(tmp, version), version, image),
          '--out',
          join(tmp, `${version}.tandem`),
        ]),
      ).toBe(ExitCode.ok);
      expect(json<{ version: string }>().version).toBe(version);
      out = [];
      expect(
        await runCli(['--json', 'push', join(tmp, `${version}.tandem`), repo, '--keys', keys, '--channel', 'stable']),
      ).toBe(ExitCode.ok);
    }
    const pushed = json<{ chunksSkipped: number; chunksUploaded: number }>();
    expect(pushed.chunksSkipped).toBeGreaterThan(pushed.chunksUploaded);

    const dir = join(tmp, 'endpoint');
    out = [];
    expect(
      await runCli([
        'pull',
        repo,
        'erp',
        '--dir',
        dir,
        '--root',
        join(keys, 'root.json'),
        '--version',
        '1.0.0',
        '--json',
      ]),
    ).toBe(ExitCode.ok);
    out = [];
    expect(await runCli(['pull', repo, 'erp', '--dir', dir, '--json'])).toBe(ExitCode.ok);
    const lines = out.join('').trim().split('\n');
    const progress = lines.slice(0, -1).filter((l) => l.startsWith('{"event":"sync.progress"'));
    expect(progress.length).toBeGreaterThan(0);
    const result = json<{ version: string; image: string; bytesFromSeeds: number; bytesTotal: number }>();
    expect(result.version).toBe('2.0.0');
    expect(Buffer.compare(readFileSync(result.image), v2)).toBe(0);
    expect(result.bytesFromSeeds).toBeGreaterThan(result.bytesTotal / 2);

    out = [];
    expect(await runCli(['--json', 'repo', 'list', repo])).toBe(ExitCode.ok);
    expect(
      json<{ versions: { version: string; channels: string[] }[] }>().versions.find((v) =>
        v.channels.includes('stable'),
      )?.version,
    ).toBe('2.0.0');
  });

  it('exits 9 on a tampered repository and 3 on a missing root', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'tandem-cli-delivery-'));
    const repo = join(tmp, 'repo');
    const keys = join(tmp, 'keys');
    expect(await runCli(['repo', 'init', repo, '--keys', keys])).toBe(ExitCode.ok);
    expect(await runCli(['pull', repo, 'erp', '--dir', join(tmp, 'e')])).toBe(ExitCode.invalidInput);
    const ts = JSON.parse(readFileSync(join(repo, 'timestamp.json'), 'utf8')) as { signed: { version: number } };
    ts.signed.version += 1;
    writeFileSync(join(repo, 'timestamp.json'), JSON.stringify(ts));
    expect(await runCli(['pull', repo, 'erp', '--dir', join(tmp, 'e'), '--root', join(keys, 'root.json')])).toBe(
      ExitCode.integrity,
    );
    expect(err.join('')).toMatch(/not signed by enough timestamp keys/);
  });
});
