import { mkdir, open, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { HostError, InvalidInputError, NotFoundError } from '../../errors.js';
import { toHostError } from '../io-errors.js';
import { isSafeRelativePath } from '../paths.js';
import { intoBuffer, type ReadOptions, type RepoStore, type StoreStats } from './types.js';

/**
 * A repository in a local directory (or a mounted share). It can also be served as it is by
 * any static web server.
 *
 * @example
 * ```ts
 * const store = new DirectoryStore('/srv/tandem-repo');
 * ```
 */
export class DirectoryStore implements RepoStore {
  readonly location: string;
  readonly ranges = true;
  readonly #stats: StoreStats = { requests: 0, bytesReceived: 0, bytesSent: 0 };

  constructor(root: string) {
    this.location = resolve(root);
  }

  #file(path: string): string {
    if (!isSafeRelativePath(path))
      throw new InvalidInputError(`Repository path ${JSON.stringify(path)} leaves the repository.`);
    return join(this.location, ...path.split('/'));
  }

  async get(path: string, options: ReadOptions = {}): Promise<Buffer | null> {
    const file = this.#file(path);
    this.#stats.requests++;
    try {
      if (options.maxBytes !== undefined) {
        const st = await stat(file);
        if (st.size > options.maxBytes) {
          throw new HostError(
            `${file} is ${st.size} bytes, more than the ${options.maxBytes} allowed for it; the repository is damaged or hostile.`,
            {
              details: { path: file, tooLarge: true },
            },
          );
        }
      }
      const data = await readFile(file);
      this.#stats.bytesReceived += data.length;
      return data;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw toHostError(err, `reading ${file}`);
    }
  }

  async getRange(path: string, offset: number, length: number, options: ReadOptions = {}): Promise<Buffer> {
    const file = this.#file(path);
    this.#stats.requests++;
    let handle;
    try {
      handle = await open(file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new NotFoundError(`${file} is missing from the repository.`, { cause: err });
      throw toHostError(err, `reading ${file}`);
    }
    try {
      const buf = intoBuffer(options.into, length) ?? Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await handle.read(buf, got, length - got, offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      this.#stats.bytesReceived += got;
      if (got !== length)
        throw new HostError(
          `${file} is shorter than expected (wanted bytes ${offset}-${offset + length - 1}); the repository is damaged.`,
        );
      return buf;
    } finally {
      await handle.close();
    }
  }

  async has(path: string): Promise<boolean> {
    try {
      await stat(this.#file(path));
      return true;
    } catch {
      return false;
    }
  }

  async put(path: string, data: Uint8Array): Promise<void> {
    const file = this.#file(path);
    const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    try {
      await mkdir(dirname(file), { recursive: true });
      await writeFile(tmp, data);
      await rename(tmp, file);
      this.#stats.requests++;
      this.#stats.bytesSent += data.length;
    } catch (err) {
      throw toHostError(err, `writing ${file}`);
    }
  }

  stats(): StoreStats {
    return { ...this.#stats };
  }
}
