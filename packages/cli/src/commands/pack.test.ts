import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cliHarness, erpWorkspace } from '../cli-harness.test-helper.js';
import { ExitCode } from '../exit-codes.js';

let tmp = '';
const tandem = cliHarness(() => join(tmp, 'state'));

/** The result document of a `--json` run: the pretty-printed JSON after any progress lines. */
function result(r: { stdout: string }): any {
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines.slice(lines.lastIndexOf('{')).join('\n'));
}

describe('tandem pack --format directory, tandem push of a package directory', () => {
  let image: Buffer;
  let ws: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'tandem-cli-pack-'));
    image = randomBytes(1 << 20);
    ws = erpWorkspace(join(tmp, 'ws'), '1.0.0', image);
  });

  it('packs into data files of at most --volume-size, pushes the directory and pulls the image back', async () => {
    const out = join(tmp, 'erp-1.0.0');
    const packed = await tandem(
      '--json',
      'pack',
      ws,
      '--out',
      out,
      '--format',
      'directory',
      '--volume-size',
      '300K',
      '--avg-size',
      '16',
    );
    expect(packed.code, packed.stderr).toBe(ExitCode.ok);
    expect(result(packed)).toMatchObject({ package: out, format: 'directory', workspace: 'erp', version: '1.0.0' });
    const dataFiles = result(packed).dataFiles as string[];
    expect(dataFiles.length).toBeGreaterThanOrEqual(4);
    expect(readdirSync(out).sort()).toEqual([...dataFiles, 'manifest.zst'].sort());
    for (const name of dataFiles) expect(statSync(join(out, name)).size).toBeLessThanOrEqual(300 * 1024);

    const repo = join(tmp, 'repo');
    const keys = join(tmp, 'keys');
    expect((await tandem('--json', 'repo', 'init', repo, '--keys', keys)).code).toBe(ExitCode.ok);
    const pushed = await tandem('--json', 'push', out, repo, '--keys', keys, '--channel', 'stable');
    expect(pushed.code, pushed.stderr).toBe(ExitCode.ok);
    expect(result(pushed)).toMatchObject({ workspace: 'erp', version: '1.0.0', alreadyPublished: false });

    const pulled = await tandem(
      '--json',
      'pull',
      repo,
      'erp',
      '--dir',
      join(tmp, 'endpoint'),
      '--root',
      join(keys, 'root.json'),
    );
    expect(pulled.code, pulled.stderr).toBe(ExitCode.ok);
    expect(Buffer.compare(readFileSync(result(pulled).image as string), image)).toBe(0);

    // The package file of the same image has the same chunks: pushing it changes nothing.
    const file = await tandem('--json', 'pack', ws, '--out', join(tmp, 'erp-1.0.0.tandem'), '--avg-size', '16');
    expect(result(file)).toMatchObject({ format: 'file', dataFiles: [], imageSha256: result(packed).imageSha256 });
    const again = await tandem('--json', 'push', join(tmp, 'erp-1.0.0.tandem'), repo, '--keys', keys);
    expect(result(again)).toMatchObject({ alreadyPublished: true });
  });

  it('takes a trailing slash as the directory form and says so on a terminal', async () => {
    const r = await tandem('pack', ws, '--out', join(tmp, 'slash') + '/');
    expect(r.code, r.stderr).toBe(ExitCode.ok);
    expect(r.stdout).toContain(`${join(tmp, 'slash')}: erp 1.0.0 (a directory: manifest and 1 data file)`);
    expect(statSync(join(tmp, 'slash', 'manifest.zst')).isFile()).toBe(true);
  });

  it('--version packages another version than the workspace file says', async () => {
    const r = await tandem('--json', 'pack', ws, '--out', join(tmp, 'stamped.tandem'), '--version', '1.0.1');
    expect(r.code, r.stderr).toBe(ExitCode.ok);
    expect(result(r)).toMatchObject({ workspace: 'erp', version: '1.0.1' });
  });

  it('refuses a bad --format, a bad or too small --volume-size, and a damaged package directory (exit 3)', async () => {
    const bad = await tandem('pack', ws, '--out', join(tmp, 'x'), '--format', 'zip');
    expect(bad.code).toBe(ExitCode.invalidInput);
    expect(bad.stderr).toContain('--format "zip": expected file or directory');
    const size = await tandem('pack', ws, '--out', join(tmp, 'x'), '--volume-size', 'lots');
    expect(size.code).toBe(ExitCode.invalidInput);
    expect(size.stderr).toContain('--volume-size "lots"');
    const small = await tandem('pack', ws, '--out', join(tmp, 'x'), '--volume-size', '100K');
    expect(small.code).toBe(ExitCode.invalidInput);
    expect(small.stderr).toMatch(/Volume size 102400 is too small for chunks of up to 262144 bytes/);
    expect(readdirSync(tmp)).not.toContain('x');

    const out = join(tmp, 'damaged');
    expect((await tandem('pack', ws, '--out', out, '--volume-size', '300K', '--avg-size', '16')).code).toBe(
      ExitCode.ok,
    );
    const name = readdirSync(out).find((e) => e.endsWith('.pack'))!;
    writeFileSync(join(out, name), readFileSync(join(out, name)).subarray(0, 1000));
    const keys = join(tmp, 'keys');
    const pushed = await tandem('push', out, join(tmp, 'repo'), '--keys', keys);
    expect(pushed.code).toBe(ExitCode.invalidInput);
    expect(pushed.stderr).toContain(`${out} is not a complete Tandem package directory`);
    expect(pushed.stderr).toContain(`of ${name}, which has 1000 bytes`);
  });

  it('--encrypt --delta-from stores encrypted deltas against the previous package, and push publishes them', async () => {
    const key = join(tmp, 'erp.key');
    expect((await tandem('keys', 'image', 'new', '--image', 'erp', '--out', key)).code).toBe(ExitCode.ok);
    const v1 = randomBytes(1 << 20);
    const v2 = Buffer.from(v1);
    for (let at = 5000; at < v2.length - 8; at += 150_000) v2.writeUInt32LE(0xdeadbeef, at);
    const p1 = join(tmp, 'enc-1.tandem');
    const p2 = join(tmp, 'enc-2.tandem');
    const ws1 = erpWorkspace(join(tmp, 'ws-enc-1'), '1.0.0', v1);
    const ws2 = erpWorkspace(join(tmp, 'ws-enc-2'), '2.0.0', v2);
    expect((await tandem('pack', ws1, '--out', p1, '--encrypt', '--key', key)).code).toBe(ExitCode.ok);
    const packed = await tandem('--json', 'pack', ws2, '--out', p2, '--encrypt', '--key', key, '--delta-from', p1);
    expect(packed.code, packed.stderr).toBe(ExitCode.ok);
    expect(result(packed).deltas).toBeGreaterThanOrEqual(5);
    const text = await tandem(
      'pack',
      ws2,
      '--out',
      join(tmp, 'enc-2b.tandem'),
      '--encrypt',
      '--key',
      key,
      '--delta-from',
      p1,
    );
    expect(text.stdout).toMatch(/\d+ encrypted deltas against /);

    const repo = join(tmp, 'repo-enc');
    const keys = join(tmp, 'keys-enc');
    expect((await tandem('repo', 'init', repo, '--keys', keys)).code).toBe(ExitCode.ok);
    expect((await tandem('push', p1, repo, '--keys', keys, '--channel', 'stable')).code).toBe(ExitCode.ok);
    const pushed = await tandem('--json', 'push', p2, repo, '--keys', keys, '--channel', 'stable');
    expect(pushed.code, pushed.stderr).toBe(ExitCode.ok);
    expect(result(pushed).deltas).toBe(result(packed).deltas);

    const plain = await tandem('pack', ws2, '--out', join(tmp, 'x.tandem'), '--delta-from', p1);
    expect(plain.code).toBe(ExitCode.invalidInput);
    expect(plain.stderr).toContain('--delta-from is for --encrypt');
    const wrong = await tandem(
      'pack',
      ws2,
      '--out',
      join(tmp, 'x.tandem'),
      '--encrypt',
      '--key',
      key,
      '--delta-from',
      ws1,
    );
    expect(wrong.code).toBe(ExitCode.invalidInput);
    expect(readdirSync(tmp)).not.toContain('x.tandem');
  });
});
