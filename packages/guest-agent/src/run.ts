import { spawn } from 'node:child_process';

/** What a program printed and how it ended. */
export interface RunResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly truncated: boolean;
}

/** Runs a program (argv as an array, never a shell) with optional stdin; output capped at `maxBytes` each. */
export type ProgramRunner = (
  command: string,
  args: readonly string[],
  options?: { input?: string | Buffer; signal?: AbortSignal; maxBytes?: number; env?: NodeJS.ProcessEnv },
) => Promise<RunResult>;

/** The real runner (node:child_process; the agent has no other dependency). */
export const runProgram: ProgramRunner = (command, args, options = {}) =>
  new Promise((resolve, reject) => {
    const max = options.maxBytes ?? 64 * 1024;
    const child = spawn(command, [...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      windowsHide: true,
      ...(options.env ? { env: options.env } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    let truncated = false;
    child.stdout.on('data', (b: Buffer) => {
      if (outLen < max) out.push(b.subarray(0, max - outLen));
      else truncated = true;
      outLen += b.length;
    });
    child.stderr.on('data', (b: Buffer) => {
      if (errLen < max) err.push(b.subarray(0, max - errLen));
      else truncated = true;
      errLen += b.length;
    });
    child.once('error', reject);
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
    child.once('close', (code, signal) => {
      resolve({
        exitCode: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        truncated: truncated || outLen > max || errLen > max,
      });
    });
  });
