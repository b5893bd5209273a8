import { open, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { execa } from 'execa';
import { HypervisorError, IntegrityError, InvalidInputError, TandemError, type EncryptedImage } from '@tandem/core';
import { recoverLuks1MasterKey, wipe, XtsCipher, XTS_SECTOR_BYTES } from '@tandem/core/crypto';
import { createLuksQcow2 } from './encrypted-luks-header.js';
import { luksPassphrase, runQemuImg } from './encryption.js';
import { withPipedSecret } from './handover.js';
import { readQcow2Facts, readRegion } from './qcow2-header.js';
import { InOrderDigest } from './in-order-digest.js';

const SECTOR = XTS_SECTOR_BYTES;
/** Bytes encrypted and written per system call. */
const PIECE = 4 * 1024 * 1024;
/** Copy buffers kept for reuse: the pull keeps up to 4 writes in flight. */
const SPARE_BUFFERS = 6;

/** Tools the data-file layout runs. */
export interface DataFileTools {
  readonly qemuImg: string;
  readonly qemuIo: string;
  readonly luksIterTimeMs?: number;
  readonly luksHeader?: 'tandem' | 'qemu-img';
}

/** The external data file of the qcow2 at `path`: beside it, named after it. */
export function dataFileOf(path: string): string {
  return `${path}.data`;
}

/** qemu's image options for a LUKS qcow2 (and its data file) whose key is the secret `tandemkey`. */
function imageOpts(path: string, dataFile: string): string {
  return [
    'driver=qcow2',
    'file.driver=file',
    `file.filename=${path.replaceAll(',', ',,')}`,
    'data-file.driver=file',
    `data-file.filename=${dataFile.replaceAll(',', ',,')}`,
    'encrypt.key-secret=tandemkey',
  ].join(',');
}

function secretObject(fifo: string): string {
  return `secret,id=tandemkey,format=raw,file=${fifo.replaceAll(',', ',,')}`;
}

/** Runs a qemu tool with the key on a fresh named pipe per attempt (qemu-img's CPU-clock glitch retried). */
async function withKey(key: Uint8Array, run: (fifo: string) => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await withPipedSecret(luksPassphrase(key), run);
      return;
    } catch (err) {
      const raw = TandemError.is(err) ? err.details['output'] : undefined;
      if (attempt >= 3 || typeof raw !== 'string' || !/Unable to get accurate CPU usage/.test(raw)) throw err;
    }
  }
}

/**
 * Creates a LUKS qcow2 of `size` bytes at `path` whose clusters live in a raw external data file
 * beside it (`data_file_raw=on`: guest offset = data file offset; the file holds LUKS ciphertext).
 * The data file starts sparse; every cluster starts allocated (QEMU reads an unwritten region as
 * the decryption of zeros), which is why the image must be filled completely (see
 * {@link DataFileImage}).
 */
export async function createDataFileImage(
  tools: DataFileTools,
  path: string,
  size: number,
  key: Uint8Array,
): Promise<void> {
  const dataFileOpts = [`data_file=${dataFileOf(path).replaceAll(',', ',,')}`, 'data_file_raw=on'];
  // Tandem's own LUKS header: qemu-img's calibrates PBKDF2 for about 1 s of CPU whatever iter-time says.
  if (
    tools.luksHeader !== 'qemu-img' &&
    (await createLuksQcow2(tools.qemuImg, path, size, key, ['-o', dataFileOpts.join(',')]))
  )
    return;
  const iter = tools.luksIterTimeMs;
  const opts = [
    'encrypt.format=luks',
    'encrypt.key-secret=tandemkey',
    ...(iter ? [`encrypt.iter-time=${iter}`] : []),
    ...dataFileOpts,
  ].join(',');
  await withKey(key, async (fifo) => {
    await runQemuImg(tools.qemuImg, [
      'create',
      '-q',
      '-f',
      'qcow2',
      '--object',
      secretObject(fifo),
      '-o',
      opts,
      path,
      String(size),
    ]);
  });
}

/**
 * Points the qcow2 at `path` at the data file beside `to` (qemu-img amend; QEMU 7.2 resolves a
 * relative data file name against its working directory, so the header holds an absolute one).
 * Called before the directory holding the image is renamed into place.
 */
export async function relocateDataFileImage(
  tools: DataFileTools,
  path: string,
  to: string,
  key: Uint8Array,
): Promise<void> {
  await withKey(key, async (fifo) => {
    await runQemuImg(tools.qemuImg, [
      'amend',
      '--object',
      secretObject(fifo),
      '--image-opts',
      imageOpts(path, dataFileOf(path)),
      '-o',
      `data_file=${dataFileOf(to).replaceAll(',', ',,')}`,
    ]);
  });
}

/**
 * An open data-file image: Tandem encrypts and decrypts its sectors itself (AES-256-XTS-plain64
 * under the LUKS master key it recovers from the header QEMU wrote, with {@link XtsCipher}: OpenSSL
 * speed, not QEMU 7.2's LUKS layer's) and writes the ciphertext straight into the data file.
 * Plaintext stays in memory. Partial sectors at a write's edges are read back, decrypted, merged
 * and written again; writes are serialized, so two writes never race for one sector.
 * {@link DataFileImage.writeZeroes} marks zero runs: whole clusters become qcow2 zero clusters
 * (QEMU reads them as zeros; the data file keeps a hole there) when the image is closed, the edges
 * are written as encrypted zeros.
 */
export class DataFileImage implements EncryptedImage {
  readonly size: number;
  readonly #tools: DataFileTools;
  readonly #path: string;
  readonly #dataFile: string;
  readonly #key: Buffer;
  readonly #xts: XtsCipher;
  readonly #fh: FileHandle;
  readonly #clusterBytes: number;
  /** Clusters that are zero runs as a whole (1 = zero). */
  readonly #zeroClusters: Uint8Array;
  #anyZeroCluster = false;
  #pendingZeros: [number, number] | undefined;
  /** The plaintext's SHA-256 as it is written (a fresh image only). */
  readonly #digest: InOrderDigest | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #failed: Error | undefined;
  #closed = false;
  /**
   * Memory reused from write to write: fresh memory costs a page fault per 4 KiB on first touch,
   * which in a VM costs more CPU than encrypting it. `#ciphertext` holds one piece's ciphertext
   * (writes are serialized); `#spare` the wiped copy buffers of writes that finished.
   */
  readonly #ciphertext = Buffer.allocUnsafeSlow(PIECE);
  readonly #spare: Buffer[] = [];

  private constructor(
    tools: DataFileTools,
    path: string,
    dataFile: string,
    key: Uint8Array,
    xts: XtsCipher,
    fh: FileHandle,
    size: number,
    clusterBits: number,
    fresh: boolean,
  ) {
    this.#tools = tools;
    this.#path = path;
    this.#dataFile = dataFile;
    this.#key = Buffer.from(key);
    this.#xts = xts;
    this.#fh = fh;
    this.size = size;
    this.#clusterBytes = 2 ** clusterBits;
    this.#zeroClusters = new Uint8Array(Math.ceil(size / this.#clusterBytes));
    this.#digest = fresh ? new InOrderDigest() : undefined;
  }

  /**
   * Opens the data-file image at `path` for writing: recovers the LUKS master key with `key` (a
   * wrong key is an AuthError), opens the data file. `fresh`: the image was just created, so its
   * last sector is written as zeros first (the bytes past the plaintext's end stay zeros).
   */
  static async open(tools: DataFileTools, path: string, key: Uint8Array, fresh: boolean): Promise<DataFileImage> {
    const facts = await readQcow2Facts(path);
    if (!facts.crypto || !facts.dataFile)
      throw new IntegrityError(`${path} is not a LUKS qcow2 with an external data file.`, { details: { path } });
    const dataFile = dataFileOf(path);
    const dataSize = (await stat(dataFile).catch(() => undefined))?.size;
    if (dataSize === undefined || dataSize < facts.size)
      throw new IntegrityError(`The data file of ${path} is missing or truncated.`, { details: { path, dataFile } });
    const region = await readRegion(path, facts.crypto.offset, facts.crypto.length);
    const master = await recoverLuks1MasterKey(region, luksPassphrase(key));
    let xts: XtsCipher;
    try {
      xts = master.use((k) => new XtsCipher(k));
    } finally {
      master.dispose();
    }
    const fh = await open(dataFile, 'r+');
    const image = new DataFileImage(tools, path, dataFile, key, xts, fh, facts.size, facts.clusterBits, fresh);
    if (fresh && facts.size >= SECTOR) await image.#writeSectors(facts.size / SECTOR - 1, Buffer.alloc(SECTOR));
    return image;
  }

  read(offset: number, length: number): Promise<Buffer> {
    // Zero runs gathered so far are settled first, so a read sees them.
    this.#flushZeros();
    return this.#serial(() => this.#read(offset, length));
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    if (offset < 0 || offset + data.length > this.size)
      return Promise.reject(
        new InvalidInputError(`A write at ${offset} of ${data.length} bytes is outside ${this.#path}.`),
      );
    const own = data.length <= PIECE ? (this.#spare.pop() ?? Buffer.allocUnsafeSlow(PIECE)) : undefined;
    const copy = own ? own.subarray(0, data.length) : Buffer.allocUnsafeSlow(data.length);
    copy.set(data);
    return this.#serial(async () => {
      try {
        await this.#write(offset, copy);
        await this.#digest?.wrote(offset, copy, (from, to) => this.#read(from, to - from));
      } finally {
        wipe(copy);
        if (own && this.#spare.length < SPARE_BUFFERS) this.#spare.push(own);
      }
    });
  }

  /** Marks `length` bytes at `offset` as zeros. Adjacent runs are gathered first (zero chunks arrive in order). */
  writeZeroes(offset: number, length: number): Promise<void> {
    this.#digest?.zero(offset, offset + length);
    if (this.#pendingZeros && this.#pendingZeros[1] === offset) {
      this.#pendingZeros[1] += length;
      return Promise.resolve();
    }
    this.#flushZeros();
    this.#pendingZeros = [offset, offset + length];
    return this.#queue.then(() => undefined);
  }

  /**
   * The SHA-256 (hex) of the first `length` bytes of plaintext written since the image was created, hashed as it was
   * written (see {@link InOrderDigest}): the pull's final check without reading the image back.
   * Undefined for an image opened again (a resumed pull) or when a write went behind what was
   * already hashed; the pull then reads the image back.
   */
  digest(length: number): Promise<string | undefined> {
    this.#flushZeros();
    return this.#serial(async () => this.#digest?.finish(length, (from, to) => this.#read(from, to - from)));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#flushZeros();
    this.#closed = true;
    try {
      await this.#queue.catch(() => undefined);
      await this.#fh.datasync();
      await this.#fh.close();
      if (!this.#failed && this.#anyZeroCluster) await this.#markZeroClusters();
      if (this.#failed) throw this.#failed;
    } finally {
      this.#xts.dispose();
      wipe(this.#key);
      this.#spare.length = 0;
    }
  }

  #serial<T>(task: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new InvalidInputError(`${this.#path} is closed.`));
    const run = this.#queue.then(() => {
      if (this.#failed) throw this.#failed;
      return task();
    });
    this.#queue = run.catch((err: unknown) => {
      this.#failed ??= err instanceof Error ? err : new Error(String(err));
    });
    return run;
  }

  /** Turns the gathered zero run into zero clusters (whole ones) and encrypted zeros (its edges). */
  #flushZeros(): void {
    const run = this.#pendingZeros;
    if (!run) return;
    this.#pendingZeros = undefined;
    const [from, to] = run;
    const c = this.#clusterBytes;
    const firstWhole = Math.ceil(from / c);
    // The image's last cluster counts as whole when the run reaches the image's end.
    const lastWhole = to >= this.size ? this.#zeroClusters.length : Math.floor(to / c);
    if (lastWhole <= firstWhole) {
      this.#serial(() => this.#writeZeros(from, to)).catch(() => undefined); // a failure is kept in #failed
      return;
    }
    for (let i = firstWhole; i < lastWhole; i++) this.#zeroClusters[i] = 1;
    this.#anyZeroCluster = true;
    const head = Math.min(to, firstWhole * c);
    const tail = lastWhole * c;
    this.#serial(async () => {
      if (head > from) await this.#writeZeros(from, head);
      if (to > tail) await this.#writeZeros(tail, to);
    }).catch(() => undefined); // a failure is kept in #failed
  }

  async #writeZeros(from: number, to: number): Promise<void> {
    for (let at = from; at < to; at += PIECE) await this.#write(at, Buffer.alloc(Math.min(PIECE, to - at)));
  }

  async #read(offset: number, length: number): Promise<Buffer> {
    const end = Math.min(this.size, offset + length);
    if (offset >= end) return Buffer.alloc(0);
    const first = Math.floor(offset / SECTOR);
    const last = Math.ceil(end / SECTOR);
    const cipher = Buffer.alloc((last - first) * SECTOR);
    await this.#fh.read(cipher, 0, cipher.length, first * SECTOR);
    const plain = this.#xts.decrypt(first, cipher);
    // Zero clusters read as zeros (QEMU's zero flag), whatever the data file holds there.
    const c = this.#clusterBytes;
    for (let k = Math.floor((first * SECTOR) / c); k * c < last * SECTOR; k++) {
      if (!this.#zeroClusters[k]) continue;
      const a = Math.max(k * c, first * SECTOR) - first * SECTOR;
      const b = Math.min((k + 1) * c, last * SECTOR) - first * SECTOR;
      plain.fill(0, a, b);
    }
    const out = Buffer.from(plain.subarray(offset - first * SECTOR, end - first * SECTOR));
    wipe(plain);
    return out;
  }

  async #write(offset: number, data: Buffer): Promise<void> {
    let at = offset;
    let rest = data;
    // A head that starts inside a sector: merge with what the sector holds.
    if (at % SECTOR !== 0 || rest.length < SECTOR) {
      const sector = Math.floor(at / SECTOR);
      const within = at - sector * SECTOR;
      const n = Math.min(SECTOR - within, rest.length);
      await this.#mergeSector(sector, within, rest.subarray(0, n));
      at += n;
      rest = rest.subarray(n);
    }
    const whole = Math.floor(rest.length / SECTOR) * SECTOR;
    for (let done = 0; done < whole; done += PIECE) {
      const n = Math.min(PIECE, whole - done);
      await this.#writeSectors((at + done) / SECTOR, rest.subarray(done, done + n));
    }
    at += whole;
    rest = rest.subarray(whole);
    if (rest.length > 0) await this.#mergeSector(at / SECTOR, 0, rest);
  }

  async #mergeSector(sector: number, within: number, bytes: Uint8Array): Promise<void> {
    const cipher = Buffer.alloc(SECTOR);
    await this.#fh.read(cipher, 0, SECTOR, sector * SECTOR);
    const plain = this.#xts.decrypt(sector, cipher);
    plain.set(bytes, within);
    try {
      await this.#writeSectors(sector, plain);
    } finally {
      wipe(plain);
    }
  }

  async #writeSectors(firstSector: number, plain: Uint8Array): Promise<void> {
    // Every caller passes at most PIECE bytes (see #write, #writeZeros).
    const cipher = this.#xts.encrypt(firstSector, plain, plain.length <= PIECE ? this.#ciphertext : undefined);
    let done = 0;
    while (done < cipher.length) {
      const { bytesWritten } = await this.#fh.write(cipher, done, cipher.length - done, firstSector * SECTOR + done);
      done += bytesWritten;
    }
  }

  /** Makes the zero runs' whole clusters qcow2 zero clusters, through qemu-io (commands on its stdin). */
  async #markZeroClusters(): Promise<void> {
    const c = this.#clusterBytes;
    const commands: string[] = [];
    for (let i = 0; i < this.#zeroClusters.length;) {
      if (!this.#zeroClusters[i]) {
        i++;
        continue;
      }
      let j = i;
      while (j < this.#zeroClusters.length && this.#zeroClusters[j]) j++;
      const from = i * c;
      const to = Math.min(j * c, Math.ceil(this.size / c) * c);
      // qemu-io takes lengths up to 2 GiB - 512 per request.
      for (let at = from; at < to; at += 1 << 30) commands.push(`write -z -u ${at} ${Math.min(1 << 30, to - at)}`);
      i = j;
    }
    commands.push('quit');
    await withKey(this.#key, async (fifo) => {
      const r = await execa(
        this.#tools.qemuIo,
        ['--object', secretObject(fifo), '--image-opts', imageOpts(this.#path, this.#dataFile)],
        { input: commands.join('\n') + '\n', reject: false, env: { LC_ALL: 'C' }, all: true },
      );
      const output = String(r.all ?? '');
      if (r.exitCode !== 0 || /^qemu-io: |failed|error/im.test(output))
        throw new HypervisorError(`qemu-io could not mark the zero runs of ${basename(this.#path)}: ${output.trim()}`, {
          details: { path: this.#path, output, exitCode: r.exitCode, dir: dirname(this.#path) },
        });
    });
  }
}
