// A pack into a directory that is really killed (SIGKILL) halfway leaves no package at its path.
// The child runs the built @tandem/core (`tsc -b` first), as `tandem pack` does.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { InvalidInputError, type TandemError } from '../errors.js';
import { makeImage, writeWorkspace } from './fixtures.test.util.js';
import { packWorkspace } from './pack.js';
import { PACKAGE_MANIFEST_FILE } from './package-directory.js';
import { openPackage } from './package-file.js';

const CORE = pathToFileURL(resolve(dirname(fileURLToPath(import.meta.url)), '../../dist/index.js')).href;

// Packs with a clock that reports progress on every chunk; after `stopAfter` reports it says so
// and blocks for good, so the parent kills it at a known point with data files written.
const CHILD = `
const { packWorkspace } = await import(process.env.CORE);
let t = 0;
let calls = 0;
await packWorkspace({
  workspaceFile: process.env.WS,
  out: process.env.OUT,
  format: 'directory',
  volumeSize: 256 * 1024,
  chunking: { avgSize: 16 * 1024 },
  clock: { now: () => (t += 1000), sleep: async () => {} },
  onProgress: () => {
    if (++calls === 60) {
      process.stdout.write('blocked\\n');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    }
  },
});
process.stdout.write('finished\\n');
`;

describe('a killed pack', () => {
  it('leaves no package at its path, and its partial directory is never taken for one', async () => {
    const base = await mkdtemp(join(tmpdir(), 'tandem-pack-kill-'));
    const ws = await writeWorkspace(join(base, 'ws'), { name: 'erp', version: '1.0.0', image: makeImage(1536 * 1024) });
    const out = join(base, 'erp-1.0.0');
    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD], {
      env: { ...process.env, CORE, WS: ws, OUT: out },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((done, fail) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (stdout.includes('blocked')) done();
      });
      child.on('exit', () => fail(new Error(`the pack ended by itself: ${stdout}\n${stderr}`)));
    });
    const partial = join(base, `erp-1.0.0.partial-${child.pid}`);
    expect((await readdir(partial)).filter((e) => e.endsWith('.pack')).length).toBeGreaterThanOrEqual(2);
    const exited = new Promise((r) => child.on('exit', r));
    child.kill('SIGKILL');
    await exited;
    expect(child.signalCode).toBe('SIGKILL');

    expect(await readdir(base)).not.toContain('erp-1.0.0');
    expect(await readdir(partial)).not.toContain(PACKAGE_MANIFEST_FILE);
    const err = await openPackage(partial).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidInputError);
    expect((err as TandemError).message).toContain('it has no manifest.zst');

    // Packing again completes normally.
    const again = await packWorkspace({
      workspaceFile: ws,
      out,
      format: 'directory',
      volumeSize: 256 * 1024,
      chunking: { avgSize: 16 * 1024 },
    });
    const pkg = await openPackage(again.path);
    expect(pkg.manifest.workspace.version).toBe('1.0.0');
    await pkg.close();
  });
});
