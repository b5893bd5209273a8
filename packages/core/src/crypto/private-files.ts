import { randomUUID } from 'node:crypto';
import { chmod, lstat, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { HostError, InvalidStateError } from '../errors.js';

/** Mode of every directory Tandem keeps state in: its user only. */
export const PRIVATE_DIR_MODE = 0o700;
/** Mode of every file Tandem keeps state in: its user only. */
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Makes `dir` (and any missing parents) with mode 0700, and narrows `dir` itself to 0700 when it
 * exists with a wider mode: for a state or keys directory. The mode is set with chmod after
 * mkdir, so a permissive umask makes no difference. A directory that is not the user's own or
 * has the sticky bit (`/tmp`) is never narrowed: it is not a state directory, and is refused.
 *
 * @example
 * ```ts
 * await ensurePrivateDir('/home/ana/.local/state/tandem');
 * ```
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  const made = await makePrivateDir(dir);
  if (made) return;
  const st = await lstat(dir);
  if ((st.mode & 0o777) === PRIVATE_DIR_MODE) return;
  const uid = process.getuid?.();
  if ((uid !== undefined && st.uid !== uid) || (st.mode & 0o1000) !== 0 || !st.isDirectory())
    throw new InvalidStateError(
      `${dir} is not a private directory of this user (mode ${(st.mode & 0o7777).toString(8)}, owner ${st.uid}) and is shared with others; choose a directory of your own for Tandem's state.`,
      'shared-directory',
      { details: { dir } },
    );
  await chmod(dir, PRIVATE_DIR_MODE);
}

/**
 * Makes the missing directories up to `dir` with mode 0700 whatever the umask; existing ones are
 * left as they are. True when `dir` itself was made.
 */
export async function makePrivateDir(dir: string): Promise<boolean> {
  const made = await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  if (made === undefined) return false;
  // mkdir returns the first directory it made; every one from there down to `dir` is new.
  for (let d = dir; ; d = dirname(d)) {
    await chmod(d, PRIVATE_DIR_MODE);
    if (d === made || dirname(d) === d) break;
  }
  return true;
}

/**
 * Writes `data` to `file` with mode 0600 whatever the umask, atomically: a temporary file in the
 * same directory (made 0700 when missing), flushed, then renamed over the old one. A reader sees the old
 * content or the new one, never a part.
 */
export async function writePrivateFile(file: string, data: string | Uint8Array): Promise<void> {
  const dir = dirname(file);
  await makePrivateDir(dir);
  const tmp = join(dir, `.${randomUUID()}.tmp`);
  try {
    const handle = await open(tmp, 'wx', PRIVATE_FILE_MODE);
    try {
      await handle.chmod(PRIVATE_FILE_MODE);
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new HostError(`Could not write ${file}: ${(err as Error).message}.`, { cause: err, details: { file } });
  }
}

/**
 * Reads a private file, or returns undefined when it does not exist. A file that other users can
 * read or write has its mode narrowed to 0600 first (an older Tandem, or a copy, left it so).
 */
export async function readPrivateFile(file: string): Promise<Buffer | undefined> {
  let mode: number;
  try {
    mode = (await lstat(file)).mode;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new HostError(`Could not read ${file}: ${(err as Error).message}.`, { cause: err, details: { file } });
  }
  if ((mode & 0o077) !== 0) await chmod(file, PRIVATE_FILE_MODE);
  return readFile(file);
}
