// Server processes for the scale-out tests (not shipped): each a child running
// server-child.test-helper.ts on the server directory given.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** Starts a server process on `dir` and resolves with it once it listens. */
export function startServer(dir: string): Promise<{ child: ChildProcess; url: string }> {
  const script = fileURLToPath(new URL('./server-child.test-helper.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=@tandem/source', script, dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => resolve({ child, url: (JSON.parse(line) as { url: string }).url }));
    child.once('exit', (code) => reject(new Error(`the server process exited (${code}) before listening`)));
  });
}

/** Stops a server process (SIGTERM) and waits for its exit. */
export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}
