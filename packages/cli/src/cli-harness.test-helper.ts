// Runs `tandem` in-process for tests, capturing what it prints (not shipped).
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
