// `tandem agent run` as a process of its own, as the systemd unit runs it, for the CLI's tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../bin.ts', import.meta.url));

/** A running `tandem agent run`: its process, its exit code once it exits, what it printed to stderr. */
export interface AgentProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  stderr(): string;
  /** SIGKILL if it still runs, and wait for it (for afterEach). */
  kill(): Promise<void>;
}

/**
 * Starts `tandem --state-dir STATE agent run --no-desktop [args]` (from the TypeScript sources)
 * and resolves once it listens; rejects with its stderr if it exits first.
 */
export function startAgentProcess(stateDir: string, args: readonly string[] = []): Promise<AgentProcess> {
  const env = { ...process.env };
  delete env['DBUS_SESSION_BUS_ADDRESS'];
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--conditions=@tandem/source',
      BIN,
      '--state-dir',
      stateDir,
      'agent',
      'run',
      '--no-desktop',
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env },
  );
  let err = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const kill = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await exited;
  };
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
      if (err.includes('listening on')) resolve({ child, exited, stderr: () => err, kill });
    });
    void exited.then((code) => reject(new Error(`tandem agent run exited (${code}): ${err}`)));
  });
}
