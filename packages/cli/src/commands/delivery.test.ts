import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { erpWorkspace } from '../cli-harness.test-helper.js';
import { ExitCode } from '../exit-codes.js';
import { runCli } from '../program.js';

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
          erpWorkspace(join(tmp, version), version, image),
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

  it('pulls over HTTP with reads straight into range buffers, through node:http with --no-direct-reads, and with --no-direct-io', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'tandem-cli-delivery-'));
    const image = randomBytes(3 << 20);
    const repo = join(tmp, 'repo');
    const keys = join(tmp, 'keys');
    expect(await runCli(['repo', 'init', repo, '--keys', keys])).toBe(ExitCode.ok);
    expect(await runCli(['pack', erpWorkspace(join(tmp, 'ws'), '1.0.0', image), '--out', join(tmp, 'p.tandem')])).toBe(
      ExitCode.ok,
    );
    expect(await runCli(['push', join(tmp, 'p.tandem'), repo, '--keys', keys, '--channel', 'stable'])).toBe(
      ExitCode.ok,
    );
    // A static server that notes each range request's Connection header.
    const rangeConnections: (string | undefined)[] = [];
    const server = http.createServer((req, res) => {
      let data: Buffer;
      try {
        data = readFileSync(join(repo, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)));
      } catch {
        res.writeHead(404).end();
        return;
      }
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      if (!m) {
        res.writeHead(200, { 'content-length': data.length }).end(data);
        return;
      }
      rangeConnections.push(req.headers.connection);
      const [from, last] = [Number(m[1]), Number(m[2])];
      res
        .writeHead(206, { 'content-length': last - from + 1, 'content-range': `bytes ${from}-${last}/${data.length}` })
        .end(data.subarray(from, last + 1));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    try {
      for (const [name, flags, header] of [
        ['direct', [], undefined],
        ['node-http', ['--no-direct-reads'], 'keep-alive'],
        ['page-cache', ['--no-direct-io'], undefined],
      ] as const) {
        rangeConnections.length = 0;
        out = [];
        const dir = join(tmp, name);
        expect(
          await runCli(['--json', 'pull', url, 'erp', '--dir', dir, '--root', join(keys, 'root.json'), ...flags]),
        ).toBe(ExitCode.ok);
        const result = json<{ image: string }>();
        expect(Buffer.compare(readFileSync(result.image), image)).toBe(0);
        expect(rangeConnections.length).toBeGreaterThan(0);
        expect(new Set(rangeConnections)).toEqual(new Set([header]));
      }
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('push stores near-duplicate chunks as deltas (--delta-versions, --no-deltas) and pull rebuilds them', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'tandem-cli-delivery-'));
    const v1 = randomBytes(2 << 20);
    const v2 = Buffer.from(v1);
    const v3 = Buffer.from(v1);
    for (let at = 4096; at < v2.length; at += 256 << 10) v2.writeUInt32LE(0xdeadbeef, at);
    for (let at = 9000; at < v3.length; at += 256 << 10) v3.writeUInt32LE(0xfeedface, at);
    const repo = join(tmp, 'repo');
    const keys = join(tmp, 'keys');
    expect(await runCli(['repo', 'init', repo, '--keys', keys])).toBe(ExitCode.ok);
    const pushed: { deltas: number }[] = [];
    for (const [version, image, flags] of [
      ['1.0.0', v1, []],
      ['2.0.0', v2, ['--delta-versions', '1']],
      ['3.0.0', v3, ['--no-deltas']],
    ] as const) {
      expect(
        await runCli([
          'pack',
          erpWorkspace(join(tmp, version), version, image),
          '--out',
          join(tmp, `${version}.tandem`),
        ]),
      ).toBe(ExitCode.ok);
      out = [];
      expect(await runCli(['--json', 'push', join(tmp, `${version}.tandem`), repo, '--keys', keys, ...flags])).toBe(
        ExitCode.ok,
      );
      pushed.push(json<{ deltas: number }>());
    }
    expect(pushed.map((p) => p.deltas > 0)).toEqual([false, true, false]);
    expect(await runCli(['push', join(tmp, '2.0.0.tandem'), repo, '--keys', keys, '--delta-versions', 'x'])).toBe(
      ExitCode.invalidInput,
    );
    expect(err.join('')).toMatch(/--delta-versions "x": expected a whole number/);
    const dir = join(tmp, 'endpoint');
    const root = join(keys, 'root.json');
    expect(await runCli(['pull', repo, 'erp', '--dir', dir, '--root', root, '--version', '1.0.0'])).toBe(ExitCode.ok);
    out = [];
    expect(await runCli(['pull', repo, 'erp', '--dir', dir, '--version', '2.0.0', '--json'])).toBe(ExitCode.ok);
    const result = json<{ image: string; chunksFromDeltas: number; chunksFetched: number }>();
    expect(Buffer.compare(readFileSync(result.image), v2)).toBe(0);
    expect(result.chunksFromDeltas).toBe(pushed[1]!.deltas);
    expect(result.chunksFetched).toBe(0);
  });
});
