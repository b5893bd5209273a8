import { createHash, hash as digest } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { toHostError } from './io-errors.js';
import type { ImageManifest } from './manifest.js';
import { syncDir, exists, type InstallDir } from './install-dir.js';

const META = '.tandem';
/** Vectored writes in flight in {@link Staging.writeRuns}. */
const RUNS_IN_FLIGHT = 8;

/**
 * A version being pulled: a partial image, written chunk by chunk at its final offsets, and a
 * journal of the chunk ids already written and verified. A pull that stops (a dropped
 * connection, a full disk, a killed process) leaves both behind, and the next pull of the same
 * manifest picks up from there. Becomes the version's directory when complete.
 */
export class Staging {
  private constructor(
    readonly dir: string,
    /** The partial image file. */
    readonly imageFile: string,
    private readonly image: FileHandle,
    private readonly journal: FileHandle,
    /** Chunk ids the journal lists (not yet re-verified). */
    readonly journaled: ReadonlySet<string>,
  ) {}

  /** Opens the staging area for a manifest, discarding one left by a different manifest. */
  static async open(
    install: InstallDir,
    manifest: ImageManifest,
    manifestBytes: Uint8Array,
    manifestSha256: string,
  ): Promise<Staging> {
    const dir = install.stagingDir(manifest.workspace.version);
    const meta = join(dir, META);
    try {
      const previous = await readFile(join(meta, 'manifest.sha256'), 'utf8').catch(() => null);
      if (previous !== manifestSha256) {
        await rm(dir, { recursive: true, force: true });
        await mkdir(meta, { recursive: true });
        await writeFile(join(meta, 'manifest.zst'), manifestBytes);
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
      if (!text.endsWith('\n') && text.length > 0)
        await writeFile(journalFile, [...journaled].map((id) => `${id}\n`).join(''));
      const journal = await open(journalFile, 'a');
      return new Staging(dir, partial, image, journal, journaled);
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

  /**
   * Writes pieces at their offsets, with one vectored write for each run of neighbours (a range
   * of a cold pull is one run).
   */
  async writeRuns(pieces: { offset: number; data: Uint8Array }[]): Promise<void> {
    pieces.sort((a, b) => a.offset - b.offset);
    const runs: { offset: number; end: number; pieces: typeof pieces }[] = [];
    for (let i = 0; i < pieces.length;) {
      let j = i + 1;
      let end = pieces[i]!.offset + pieces[i]!.data.length;
      while (j < pieces.length && pieces[j]!.offset === end) end += pieces[j++]!.data.length;
      runs.push({ offset: pieces[i]!.offset, end, pieces: pieces.slice(i, j) });
      i = j;
    }
    // Several runs in flight: scattered pieces (chunks rebuilt from deltas) are as many runs, and
    // writing them one after another waits a thread-pool round trip each.
    const write = async (): Promise<void> => {
      for (let run = runs.shift(); run; run = runs.shift()) {
        const { bytesWritten } = await this.image.writev(
          run.pieces.map((p) => p.data),
          run.offset,
        );
        if (bytesWritten !== run.end - run.offset) for (const p of run.pieces) await this.write(p.data, [p.offset]);
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(RUNS_IN_FLIGHT, runs.length) }, write));
    } catch (err) {
      throw toHostError(err, `writing the new image in ${this.dir}`);
    }
  }

  /** Records that chunks are written everywhere they belong. */
  async record(...ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    try {
      await this.journal.write(ids.map((id) => `${id}\n`).join(''));
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
    for (let at = 0; at < size;) {
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

/**
 * Collects seeded chunks and writes them in batches of about 8 MiB (one vectored write per run
 * of neighbours, one journal write per batch).
 */
export class SeedSink {
  #pieces: { offset: number; data: Uint8Array }[] = [];
  #ids: string[] = [];
  #bytes = 0;

  constructor(
    private readonly needed: Map<string, { readonly length: number; readonly offsets: readonly number[] }>,
    private readonly staging: Staging,
    private readonly written: (bytes: number, offsets: number[]) => void,
  ) {}

  async put(id: string, data: Uint8Array): Promise<void> {
    const entry = this.needed.get(id);
    if (!entry) return;
    this.needed.delete(id);
    for (const offset of entry.offsets) this.#pieces.push({ offset, data });
    this.#ids.push(id);
    this.#bytes += data.length * entry.offsets.length;
    if (this.#bytes >= 8 * 1024 * 1024) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.#ids.length === 0) return;
    const pieces = this.#pieces;
    const ids = this.#ids;
    const bytes = this.#bytes;
    this.#pieces = [];
    this.#ids = [];
    this.#bytes = 0;
    await this.staging.writeRuns(pieces);
    await this.staging.record(...ids);
    this.written(
      bytes,
      pieces.map((p) => p.offset),
    );
  }
}
