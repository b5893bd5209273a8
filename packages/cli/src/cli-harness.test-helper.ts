// Runs `tandem` in-process for tests, capturing what it prints (not shipped).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, vi } from 'vitest';
import { runCli } from './program.js';

/** One invocation: exit code, stdout parsed as JSON when it is JSON, and both streams. */
export interface CliRun {
  code: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read whatever JSON a command printed
  json: any;
  stdout: string;
  stderr: string;
}

/**
 * Installs stdout/stderr capture around each test and returns `tandem(...args)`, which runs the
 * CLI with `--state-dir` set to what `stateDir()` returns at call time.
 */
export function cliHarness(stateDir: () => string): (...args: string[]) => Promise<CliRun> {
  let out: string[] = [];
  let err: string[] = [];
  beforeEach(() => {
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => (out.push(String(chunk)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => (err.push(String(chunk)), true));
  });
  afterEach(() => vi.restoreAllMocks());
  return async (...args) => {
    out = [];
    err = [];
    const code = await runCli(['--state-dir', stateDir(), ...args]);
    const stdout = out.join('');
    let json: unknown;
    try {
      json = JSON.parse(stdout);
    } catch {
      json = undefined;
    }
    return { code, json, stdout, stderr: err.join('') };
  };
}

/**
 * Writes the workspace `erp` at `version` into `dir`, with `image` as its raw disk image in
 * `images/disk.img`; returns the workspace file's path.
 */
export function erpWorkspace(dir: string, version: string, image: Buffer): string {
  mkdirSync(join(dir, 'images'), { recursive: true });
  writeFileSync(join(dir, 'images', 'disk.img'), image);
  const file = join(dir, 'tandem.workspace.yaml');
  writeFileSync(
    file,
    `apiVersion: tandem/v1\nkind: Workspace\nmetadata: { name: erp, version: ${version} }\nspec:\n  image: { source: ./images/disk.img, format: raw }\n  hardware: { memory: { fixedMiB: 512 } }\n`,
  );
  return file;
}
