import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConflictError, HostError } from '../errors.js';

/**
 * Takes a lock file holding this process's pid, created exclusively. A lock left by a process
 * that no longer runs is taken over; one held by a live process is a ConflictError built by
 * `held` (so the message can say what the holder is doing). Resolves with the release function.
 *
 * @example
 * ```ts
 * const release = await acquirePidLock('/var/lib/tandem/locks/vm.lock', (pid) =>
 *   new ConflictError(`Another tandem command (pid ${pid}) is driving the VM.`));
 * try { ... } finally { await release(); }
 * ```
 */
export async function acquirePidLock(file: string, held: (pid: number) => ConflictError): Promise<() => Promise<void>> {
  await mkdir(dirname(file), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(file, String(process.pid), { flag: 'wx' });
      return async () => {
        await rm(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new HostError(`Cannot create the lock file ${file}: ${(err as Error).message}`, {
          cause: err,
          details: { file },
        });
      }
      const pid = Number(await readFile(file, 'utf8').catch(() => 'NaN'));
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) throw held(pid);
      await rm(file, { force: true });
    }
  }
  throw new ConflictError(`Cannot lock ${file}: another process keeps taking it.`, { details: { file } });
}

/** True when a process with this pid runs (possibly as another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
