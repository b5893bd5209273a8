import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { toHostError } from '../io-errors.js';
import type { RoleName } from './keys.js';

/** Where a client keeps the last metadata it verified, to refuse rollbacks. */
export interface TrustStore {
  load(role: RoleName): Promise<Buffer | null>;
  save(role: RoleName, bytes: Uint8Array): Promise<void>;
  remove(role: RoleName): Promise<void>;
}

/** Trusted metadata in memory (publishers, tests). */
export class MemoryTrustStore implements TrustStore {
  readonly #files = new Map<RoleName, Buffer>();
  async load(role: RoleName): Promise<Buffer | null> {
    return this.#files.get(role) ?? null;
  }
  async save(role: RoleName, bytes: Uint8Array): Promise<void> {
    this.#files.set(role, Buffer.from(bytes));
  }
  async remove(role: RoleName): Promise<void> {
    this.#files.delete(role);
  }
}

/** Trusted metadata as `<role>.json` files in a directory, replaced atomically. */
export class DirectoryTrustStore implements TrustStore {
  constructor(readonly dir: string) {}
  async load(role: RoleName): Promise<Buffer | null> {
    try {
      return await readFile(join(this.dir, `${role}.json`));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw toHostError(err, `reading trusted ${role} metadata`);
    }
  }
  async save(role: RoleName, bytes: Uint8Array): Promise<void> {
    const file = join(this.dir, `${role}.json`);
    const tmp = `${file}.tmp-${process.pid}`;
    try {
      await mkdir(this.dir, { recursive: true });
      const handle = await open(tmp, 'w');
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw toHostError(err, `saving trusted ${role} metadata`);
    }
  }
  async remove(role: RoleName): Promise<void> {
    await rm(join(this.dir, `${role}.json`), { force: true });
  }
}
