import { createHash, hash as digest } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { toHostError } from './io-errors.js';
import type { ImageManifest } from './manifest.js';
import { syncDir, exists, type InstallDir } from './install-dir.js';

const META = '.tandem';

/**
 * A version being pulled: a partial image, written chunk by chunk at its final offsets, and a
 * journal of the chunk ids already written and verified. A pull that stops (a dropped
 * connection, a full disk, a killed process) leaves both behind, and the next pull of the same
 * manifest picks up from there. Becomes the version's directory when complete.
 */
export class Staging {
  private constructor(
    readonly dir: string,
    private readonly image: FileHandle,
    private readonly journal: FileHandle,
    /** Chunk ids the journal lists (not yet re-verified). */
    readonly journaled: ReadonlySet<string>,
  ) {}

  /** Opens the staging area for a manifest, discarding one left by a different manifest. */
  static async open(install: InstallDir, manifest: ImageManifest, manifestBytes: Uint8Array, manifestSha256: string): Promise<Staging> {
    const dir = install.stagingDir(manifest.workspace.version);
    const meta = join(dir, META);
    try {
      const previous = await readFile(join(meta, 'manifest.sha256'), 'utf8').catch(() => null);
      if (previous !== manifestSha256) {
        await rm(dir, { recursive: true, force: true });
        await mkdir(meta, { recursive: true });
        await writeFile(join(meta, 'manifest.json'), manifestBytes);
        await writeFile(join(meta, 'manifest.sha256'), manifestSha256);
      }
      const partial = join(meta, 'image.partial');
      const fresh = !(await exists(partial));
      const image = await open(partial, fresh ? 'w+' : 'r+');
      // A sparse file of the right size: runs of zeros are never written.
      if (fresh || (await image.stat()).size !== manifest.image.size) await image.truncate(manifest.image.size);
      const journalFile = join(meta, 'journal');
      const text = await readFile(journalFile, 'utf8').catch(() => '');
      const journaled = new Set(text.split('\n').filter((l) => /^[0-9a-f]{64}$/.test(l)));
      // Drop a torn last line so new entries start on a line of their own.
      if (!text.endsWith('\n') && text.length > 0) await writeFile(journalFile, [...journaled].map((id) => `${id}\n`).join(''));
      const journal = await open(journalFile, 'a');
      return new Staging(dir, image, journal, journaled);
    } catch (err) {
      throw toHostError(err, `preparing ${dir}`);
    }
  }

  /** Writes verified chunk data at each offset. */
  async write(data: Uint8Array, offsets: readonly number[]): Promise<void> {
    try {
      for (const offset of offsets) {
        let done = 0;
        while (done < data.length) {
          const { bytesWritten } = await this.image.write(data, done, data.length - done, offset + done);
          done += bytesWritten;
        }
      }
    } catch (err) {
      throw toHostError(err, `writing the new image in ${this.dir}`);
    }
  }

  /** Records that a chunk is written everywhere it belongs. */
  async record(id: string): Promise<void> {
    try {
      await this.journal.write(`${id}\n`);
    } catch (err) {
      throw toHostError(err, `writing the journal in ${this.dir}`);
    }
  }

  /** Reads bytes of the partial image. */
  async read(offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await this.image.read(buf, got, length - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  }

  /** Checks a journaled chunk again (by reading it back): true when every copy is intact. */
  async verify(id: string, length: number, offsets: readonly number[]): Promise<boolean> {
    for (const offset of offsets) {
      const data = await this.read(offset, length);
      if (data.length !== length || digest('sha256', data, 'hex') !== id) return false;
    }
    return true;
  }

  /** SHA-256 of the whole partial image. */
  async imageSha256(size: number): Promise<string> {
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(8 * 1024 * 1024);
    for (let at = 0; at < size; ) {
      const { bytesRead } = await this.image.read(buf, 0, Math.min(buf.length, size - at), at);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
      at += bytesRead;
    }
    return h.digest('hex');
  }

  /**
   * Turns the staging area into a version directory: flushes the image to disk, puts it and the
   * workspace file in place, and renames the directory to `target`.
   */
  async complete(manifest: ImageManifest, target: string): Promise<void> {
    try {
      await this.image.sync();
      await this.image.close();
      await this.journal.close();
      const meta = join(this.dir, META);
      const imageFile = join(this.dir, ...manifest.image.path.split('/'));
      await mkdir(dirname(imageFile), { recursive: true });
      await rename(join(meta, 'image.partial'), imageFile);
      await writeFile(join(this.dir, manifest.workspace.file.name), manifest.workspace.file.text);
      await rm(join(meta, 'journal'), { force: true });
      await syncDir(dirname(imageFile));
      await rm(target, { recursive: true, force: true });
      await mkdir(dirname(target), { recursive: true });
      await rename(this.dir, target);
      await syncDir(dirname(target));
    } catch (err) {
      throw toHostError(err, `installing ${target}`);
    }
  }

  /** Closes the files, keeping everything for a later resume. */
  async close(): Promise<void> {
    await this.image.close().catch(() => undefined);
    await this.journal.close().catch(() => undefined);
  }

  /** Closes and deletes the staging area (its image failed verification as a whole). */
  async discard(): Promise<void> {
    await this.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Name of the metadata folder inside a version directory. */
export const VERSION_META_DIR = META;
