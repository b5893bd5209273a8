// Test fixtures for the agent (not shipped): a workspace on disk, a temp state dir, a child agent.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MockAdapter } from '@tandem/core/testing';
import type { Clock } from '@tandem/core';
import type { AdapterOpener } from './host-agent.js';

/** A fresh directory, removed by the returned function. */
export function tempDir(prefix = 'tandem-agent-'): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Writes workspace `name` (a raw 1 MiB image) into `dir`; returns the workspace file. */
export function writeWorkspace(dir: string, name = 'erp', extra = ''): string {
  const ws = join(dir, name);
  mkdirSync(join(ws, 'images'), { recursive: true });
  writeFileSync(join(ws, 'images', 'disk.img'), Buffer.alloc(1 << 20));
  const file = join(ws, 'tandem.workspace.yaml');
  writeFileSync(
    file,
    `apiVersion: tandem/v1\nkind: Workspace\nmetadata: { name: ${name}, version: 1.0.0 }\nspec:\n  image: { source: ./images/disk.img, format: raw }\n  hardware: { memory: { fixedMiB: 512 } }\n${extra}`,
  );
  return file;
}

/** An adapter opener over one persistent mock hypervisor (its state file outlives the process). */
export function mockOpener(stateFile: string, clock?: Clock): AdapterOpener {
  return async () => ({ adapter: new MockAdapter({ stateFile, ...(clock ? { clock } : {}) }), name: 'mock' });
}

const CHILD = fileURLToPath(new URL('./agent-child.test-helper.ts', import.meta.url));

/** Spawns the agent in a child process on the persistent mock; resolves once it listens. */
export async function spawnAgent(options: {
  stateDir: string;
  socketPath: string;
  uplinkUrl?: string;
}): Promise<{ child: ChildProcess; exited: Promise<number | null>; stderr: () => string }> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--conditions=@tandem/source',
      CHILD,
      options.stateDir,
      options.socketPath,
      options.uplinkUrl ?? '',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('ready\n')) resolve();
    });
    void exited.then((code) => reject(new Error(`the agent exited (${code}) before it was ready: ${err}`)));
  });
  return { child, exited, stderr: () => err };
}
