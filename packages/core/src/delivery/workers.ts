import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { HostError, IntegrityError } from '../errors.js';
import { toHostError } from './io-errors.js';

/** A chunk in a fetched range, and every image offset it goes to. */
export interface RangeChunk {
  readonly id: string;
  readonly at: number;
  readonly size: number;
  readonly length: number;
  readonly offsets: readonly number[];
}

interface Reply {
  seq: number;
  error?: {
    kind: 'corrupt' | 'integrity' | 'io' | 'decrypt';
    chunk?: string;
    actual?: string;
    code?: string;
    message?: string;
  };
  /** The plaintexts of a decoded encrypted range, one after another. */
  plain?: Uint8Array;
  digest?: string;
  hashed?: number;
  /** Bytes the replying thread has written or read with direct I/O so far. */
  directBytes?: number;
}

const WORKER_URL = new URL(
  import.meta.url.endsWith('.ts') ? './chunk-worker.ts' : './chunk-worker.js',
  import.meta.url,
);

/**
 * The message plumbing a pool of chunk-worker threads shares: spawning a thread, numbered calls
 * and their replies, and the first failure of any thread, which rejects every call in flight
 * and every later one.
 */
class WorkerCalls {
  readonly #pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: unknown) => void }>();
  #seq = 0;
  failed: Error | undefined;

  /** A chunk-worker thread whose replies and failures go through these calls. */
  spawn(workerData: { file: string | undefined; direct: boolean }): Worker {
    const w = new Worker(WORKER_URL, { workerData });
    w.on('message', (r: Reply) => {
      const p = this.#pending.get(r.seq);
      this.#pending.delete(r.seq);
      p?.resolve(r);
    });
    w.on('error', (err: Error) => this.#fail(err));
    w.on('exit', (code) => {
      if (code !== 0) this.#fail(new HostError(`A pull worker thread stopped with exit code ${code}.`));
    });
    return w;
  }

  call(worker: Worker, message: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<Reply> {
    if (this.failed !== undefined) return Promise.reject(this.failed);
    const seq = ++this.#seq;
    return new Promise<Reply>((resolve, reject) => {
      this.#pending.set(seq, { resolve, reject });
      worker.postMessage({ ...message, seq }, transfer);
    });
  }

  #fail(err: Error): void {
    this.failed ??= err;
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }
}

/**
 * Worker threads for a pull: some verify and write fetched ranges, one hashes the image in
 * order as it fills up, so the main thread only talks HTTP and the whole-image check costs
 * little at the end.
 */
export class ChunkWorkers {
  readonly #verifiers: Worker[];
  readonly #hasher: Worker;
  readonly #directWritten = new Map<Worker, number>();
  readonly #calls = new WorkerCalls();
  #next = 0;

  /**
   * @param file - the partial image
   * @param count - verifying threads; default the CPU count less one, at least 2 (a direct write
   *   waits for the disk while another thread verifies) and at most 4
   * @param direct - write whole pages and read them back with direct I/O (O_DIRECT) where the
   *   file system takes it; default true
   */
  constructor(file: string, count = Math.max(2, Math.min(4, availableParallelism() - 1)), direct = true) {
    const spawn = (): Worker => this.#calls.spawn({ file, direct });
    this.#verifiers = Array.from({ length: count }, spawn);
    this.#hasher = spawn();
  }

  /**
   * Verifies every chunk of a fetched range and writes it at its offsets. Throws
   * IntegrityError for a chunk that does not match its id, HostError for a write that fails.
   * Memory from {@link alignedBuffer} is shared: the worker reads it in place, and when it lies
   * so that image pages fall on memory pages, writes whole pages from it with direct I/O without
   * a copy. Other memory is handed to the worker (without a copy when `data` is all of its
   * ArrayBuffer), so `data` is empty afterwards.
   */
  async verifyAndWrite(data: Buffer, chunks: readonly RangeChunk[], source: string): Promise<void> {
    const worker = this.#verifiers[this.#next++ % this.#verifiers.length]!;
    let reply: Reply;
    if (data.buffer instanceof SharedArrayBuffer) {
      // Shared memory (see alignedBuffer): the worker reads it in place; the caller keeps it.
      reply = await this.#calls.call(worker, { type: 'verify', data, chunks });
    } else {
      // Hand the bytes over without a copy when they own their memory.
      const owned =
        data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer;
      // (Buffer.from would copy a small range into Node's shared pool, which cannot be transferred.)
      const bytes = owned ? data : Buffer.from(new Uint8Array(data).buffer);
      reply = await this.#calls.call(worker, { type: 'verify', data: bytes, chunks }, [bytes.buffer as ArrayBuffer]);
    }
    this.#directWritten.set(worker, reply.directBytes ?? 0);
    const e = reply.error;
    if (!e) return;
    if (e.kind === 'io')
      throw toHostError(
        Object.assign(new Error(e.message ?? 'write failed'), { code: e.code }),
        'writing the new image',
      );
    throw new IntegrityError(
      e.kind === 'corrupt'
        ? `Chunk ${e.chunk} from ${source} is not valid zstd data; the repository copy is damaged or was tampered with. Nothing was installed; verified chunks are kept for the next pull.`
        : `Chunk ${e.chunk} from ${source} does not match its id; the repository copy is damaged or was tampered with. Nothing was installed; verified chunks are kept for the next pull.`,
      { details: { chunk: e.chunk, source, expected: e.chunk, ...(e.actual ? { actual: e.actual } : {}) } },
    );
  }

  /** Lets the hasher read the image up to `offset` (everything before it is final). */
  hashTo(offset: number): void {
    if (this.#calls.failed === undefined) this.#hasher.postMessage({ type: 'hash', upTo: offset });
  }

  /** SHA-256 of the image hashed so far, and how many bytes that is. */
  async digest(): Promise<{ sha256: string; bytes: number; directBytesRead: number }> {
    const reply = await this.#calls.call(this.#hasher, { type: 'digest' });
    if (reply.error) {
      throw toHostError(
        Object.assign(new Error(reply.error.message ?? 'read failed'), { code: reply.error.code }),
        'reading the new image back',
      );
    }
    return { sha256: reply.digest!, bytes: reply.hashed!, directBytesRead: reply.directBytes ?? 0 };
  }

  /** Bytes the verifying threads wrote with direct I/O (whole pages, past the page cache). */
  get directBytesWritten(): number {
    let n = 0;
    for (const v of this.#directWritten.values()) n += v;
    return n;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#verifiers, this.#hasher].map((w) => w.terminate()));
  }
}

/** An encrypted chunk in a fetched range: where its sealed bytes are, and its plaintext length. */
export interface SealedChunk {
  readonly id: string;
  readonly at: number;
  readonly size: number;
  readonly length: number;
}

/**
 * Worker threads that decode an encrypted pull's fetched ranges (AES-256-GCM, zstd, the keyed
 * id check: what `decodeEncryptedChunk` does) so the main thread only fetches, encrypts for the
 * image and writes. The chunk keys go to each thread in a message (moved, not copied: nothing
 * in argv, the environment or logs) and are dropped there by {@link EncryptedChunkDecoders.close}.
 */
export class EncryptedChunkDecoders {
  readonly #workers: Worker[];
  readonly #calls = new WorkerCalls();
  readonly #ready: Promise<unknown>;
  #next = 0;

  /**
   * @param keys - the id key and the chunk-encryption key (see `ChunkCipher.chunkKeys`); the
   *   caller wipes its copies
   * @param count - threads; default the CPU count less one, from 1 to 4
   */
  constructor(
    keys: { idKey: Uint8Array; encKey: Uint8Array },
    count = Math.max(1, Math.min(4, availableParallelism() - 1)),
  ) {
    this.#workers = Array.from({ length: count }, () => this.#calls.spawn({ file: undefined, direct: false }));
    this.#ready = Promise.all(
      this.#workers.map((w) => {
        const k = new Uint8Array(64);
        k.set(keys.idKey.subarray(0, 32));
        k.set(keys.encKey.subarray(0, 32), 32);
        return this.#calls.call(w, { type: 'keys', keys: k }, [k.buffer]);
      }),
    );
    this.#ready.catch(() => undefined);
  }

  /**
   * Decodes every chunk of a fetched range; resolves to their plaintexts in `chunks` order (the
   * caller wipes them). `data` is handed to a thread (without a copy when it is all of its
   * ArrayBuffer), so it is empty afterwards. IntegrityError for a chunk that was altered.
   */
  async decode(data: Buffer, chunks: readonly SealedChunk[], source: string): Promise<Buffer[]> {
    await this.#ready;
    const worker = this.#workers[this.#next++ % this.#workers.length]!;
    const owned =
      data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer;
    const bytes = owned ? data : Buffer.from(new Uint8Array(data).buffer);
    const list = chunks.map((c) => ({ id: c.id, at: c.at, size: c.size, length: c.length }));
    const reply = await this.#calls.call(worker, { type: 'decode', data: bytes, chunks: list }, [
      bytes.buffer as ArrayBuffer,
    ]);
    const e = reply.error;
    if (e) {
      const what =
        e.kind === 'decrypt'
          ? "does not decrypt: the repository copy was altered or damaged, or the data key is not this image's"
          : e.kind === 'corrupt'
            ? `is not valid zstd data (${e.message ?? ''}); the repository copy is damaged or was tampered with`
            : e.kind === 'integrity'
              ? 'does not match its keyed id; the package was altered'
              : `could not be decoded (${e.message ?? ''})`;
      throw new IntegrityError(`Encrypted chunk ${e.chunk} from ${source} ${what}.`, {
        details: { chunk: e.chunk, source, reason: e.kind },
      });
    }
    const plain = Buffer.from(reply.plain!.buffer, reply.plain!.byteOffset, reply.plain!.byteLength);
    const out: Buffer[] = [];
    let at = 0;
    for (const c of chunks) {
      out.push(plain.subarray(at, at + c.length));
      at += c.length;
    }
    return out;
  }

  /** Drops the keys in every thread, then stops the threads. */
  async close(): Promise<void> {
    if (this.#calls.failed === undefined)
      await Promise.all(this.#workers.map((w) => this.#calls.call(w, { type: 'wipe' }))).catch(() => undefined);
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }
}

/** Size of the pages direct I/O aligns to. */
export const PAGE_BYTES = 4096;

/** WebAssembly.Memory (not in the TypeScript libraries this package compiles with). */
const WasmMemory = (
  globalThis as unknown as {
    WebAssembly: {
      Memory: new (d: { initial: number; maximum: number; shared: boolean }) => { buffer: SharedArrayBuffer };
    };
  }
).WebAssembly.Memory;

/**
 * Shared memory of at least `bytes` that starts on a page boundary (WebAssembly memory does),
 * for range buffers whose bytes worker threads can write with direct I/O in place.
 */
export function alignedBuffer(bytes: number): Buffer {
  const pages = Math.max(1, Math.ceil(bytes / 65536));
  return Buffer.from(new WasmMemory({ initial: pages, maximum: pages, shared: true }).buffer);
}

/**
 * Tracks which chunks of the image are final, in image order, so the hasher can run right
 * behind the writers.
 */
export class ImageCursor {
  readonly #offsets: Float64Array;
  readonly #ends: Float64Array;
  readonly #done: Uint8Array;
  #index = 0;

  constructor(chunks: readonly { offset: number; length: number }[]) {
    this.#offsets = Float64Array.from(chunks, (c) => c.offset);
    this.#ends = Float64Array.from(chunks, (c) => c.offset + c.length);
    this.#done = new Uint8Array(chunks.length);
  }

  /** Marks the chunk that starts at `offset` as written. */
  mark(offset: number): void {
    let lo = 0;
    let hi = this.#offsets.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.#offsets[mid]!;
      if (v === offset) {
        this.#done[mid] = 1;
        return;
      }
      if (v < offset) lo = mid + 1;
      else hi = mid - 1;
    }
  }

  /** The end of the longest run of written chunks from the start of the image. */
  advance(): number {
    while (this.#index < this.#done.length && this.#done[this.#index] === 1) this.#index++;
    return this.#index === 0 ? 0 : this.#ends[this.#index - 1]!;
  }
}
