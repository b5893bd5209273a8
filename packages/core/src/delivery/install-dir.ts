import { open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join, relative, resolve, isAbsolute } from 'node:path';
import { ConflictError, IntegrityError, InvalidInputError } from '../errors.js';
import { acquirePidLock } from '../util/pid-lock.js';
import { toHostError } from './io-errors.js';
import { compareVersions, isSafeRelativePath } from './paths.js';

/**
 * The installed-version pointer, `installed.json` in the install directory. It is replaced
 * atomically (write, fsync, rename), so it always names a complete, verified version.
 */
export interface InstalledPointer {
  readonly workspace: string;
  readonly version: string;
  /** SHA-256 of the version's manifest. */
  readonly manifestSha256: string;
  readonly imageSha256: string;
  /** Relative to the install directory. */
  readonly workspaceFile: string;
  /** Relative to the install directory. */
  readonly image: string;
  readonly installedAt: string;
}

/**
 * Paths of an install directory:
 * ```
 * installed.json             the pointer to the version in use
 * versions/<version>/        complete, verified versions (workspace file, image, .tandem/manifest.zst)
 * staging/<version>/         a version being pulled (partial image, journal of verified chunks)
 * trust/                     the last verified repository metadata
 * pull.lock                  held while a pull runs
 * ```
 */
export class InstallDir {
  constructor(readonly root: string) {}

  get pointerFile(): string {
    return join(this.root, 'installed.json');
  }
  get trustDir(): string {
    return join(this.root, 'trust');
  }
  versionDir(version: string): string {
    return join(this.root, 'versions', checkVersionName(version));
  }
  stagingDir(version: string): string {
    return join(this.root, 'staging', checkVersionName(version));
  }

  /** The installed version, or null when nothing is installed. */
  async installed(): Promise<InstalledPointer | null> {
    let text: string;
    try {
      text = await readFile(this.pointerFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw toHostError(err, `reading ${this.pointerFile}`);
    }
    try {
      const p = JSON.parse(text) as InstalledPointer;
      if (typeof p.version !== 'string' || !isSafeRelativePath(p.image) || !isSafeRelativePath(p.workspaceFile))
        throw new Error('bad fields');
      return p;
    } catch (err) {
      throw new IntegrityError(`${this.pointerFile} is damaged (${(err as Error).message}); pull again to repair it.`, {
        cause: err,
      });
    }
  }

  /** Replaces the pointer atomically. */
  async switchTo(pointer: InstalledPointer): Promise<void> {
    const tmp = `${this.pointerFile}.tmp-${process.pid}`;
    try {
      const handle = await open(tmp, 'w');
      try {
        await handle.writeFile(JSON.stringify(pointer, null, 2) + '\n');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, this.pointerFile);
      await syncDir(this.root);
    } catch (err) {
      await rm(tmp, { force: true });
      throw toHostError(err, `switching ${this.pointerFile}`);
    }
  }

  /** Versions in versions/, highest first. */
  async versions(): Promise<string[]> {
    try {
      const names = await readdir(join(this.root, 'versions'));
      return names
        .filter((n) => !n.startsWith('.'))
        .sort(compareVersions)
        .reverse();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  /**
   * Removes old versions: keeps the installed one, every version holding a path in `inUse` (a
   * disk a defined VM still uses), and the highest others up to `keep` in all (more when more
   * are in use). Returns the versions removed.
   */
  async applyRetention(keep: number, inUse: Iterable<string> = []): Promise<string[]> {
    const installed = (await this.installed())?.version;
    const all = await this.versions();
    const kept = new Set(installed ? [installed] : []);
    for (const path of inUse) {
      for (const v of all) {
        const rel = relative(resolve(this.versionDir(v)), resolve(path));
        if (rel !== '' && !rel.startsWith('..') && !isAbsolute(rel)) kept.add(v);
      }
    }
    for (const v of all) if (kept.size < Math.max(1, keep)) kept.add(v);
    const removed = all.filter((v) => !kept.has(v));
    for (const v of removed) await rm(this.versionDir(v), { recursive: true, force: true });
    return removed;
  }

  /** Removes staging areas of versions other than `except`. */
  async cleanStaging(except?: string): Promise<void> {
    let names: string[];
    try {
      names = await readdir(join(this.root, 'staging'));
    } catch {
      return;
    }
    for (const n of names) if (n !== except) await rm(join(this.root, 'staging', n), { recursive: true, force: true });
  }

  /**
   * Takes `pull.lock`. A lock left by a process that no longer runs (killed) is taken over;
   * one held by a live process is a ConflictError.
   */
  async lock(): Promise<() => Promise<void>> {
    if (heldHere.has(this.root))
      throw new ConflictError(`Another pull is running in ${this.root}; wait for it to finish.`);
    heldHere.add(this.root);
    try {
      const release = await this.#lockFile();
      return async () => {
        heldHere.delete(this.root);
        await release();
      };
    } catch (err) {
      heldHere.delete(this.root);
      throw err;
    }
  }

  #lockFile(): Promise<() => Promise<void>> {
    return acquirePidLock(
      join(this.root, 'pull.lock'),
      (pid) =>
        new ConflictError(`Another pull (process ${pid}) is running in ${this.root}; wait for it to finish.`, {
          details: { pid },
        }),
    );
  }
}

/** Install directories locked by this process (the lock file cannot tell two pulls of one process apart). */
const heldHere = new Set<string>();

function checkVersionName(version: string): string {
  if (!/^[0-9A-Za-z][0-9A-Za-z.+_-]{0,127}$/.test(version)) {
    throw new InvalidInputError(
      `Version ${JSON.stringify(version)} cannot name a directory; expected letters, digits, dots, dashes, plus signs.`,
    );
  }
  return version;
}

/** fsync a directory so a rename in it survives a power cut (a no-op where unsupported). */
export async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Windows cannot open directories; rename there is already durable enough.
  }
}

/** True when `path` exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
