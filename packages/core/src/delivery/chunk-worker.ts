// A worker thread of a pull: verifies fetched chunks (SHA-256, after zstd for compressed ones) and writes them into
// the partial image, or hashes the image as it fills up; or, for an encrypted pull (no file),
// decodes encrypted chunks (AES-GCM, zstd, keyed id) and hands the plaintext back. Self-contained (node: modules only) so
// it runs both from dist/ and, through Node's type stripping, from src/ in tests.
import { createDecipheriv, createHash, hash, type Hash } from 'node:crypto';
import { constants, openSync, read, writevSync, writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { zstdDecompressSync } from 'node:zlib';

interface TaskChunk {
  id: string;
  at: number;
  size: number;
  length: number;
  offsets: number[];
}

interface VerifyTask {
  type: 'verify';
  seq: number;
  data: Uint8Array;
  chunks: TaskChunk[];
}

interface DecodeTask {
  type: 'decode';
  seq: number;
  data: Uint8Array;
  chunks: { id: string; at: number; size: number; length: number }[];
}

type Message =
  | VerifyTask
  | DecodeTask
  | { type: 'keys'; seq: number; keys: Uint8Array }
  | { type: 'wipe'; seq: number }
  | { type: 'hash'; upTo: number }
  | { type: 'digest'; seq: number };

const port = parentPort!;
const { file, direct: wantDirect } = workerData as { file: string | undefined; direct: boolean };
// A decoding worker (an encrypted pull) has no file: the main thread writes through the image store.
const fd = file === undefined ? -1 : openSync(file, 'r+');
const imageHash = createHash('sha256');
let hashed = 0;

// Direct I/O (O_DIRECT): whole pages of the image are written from, and read back into, aligned
// memory without going through the page cache, which costs more CPU than everything else a pull
// does wherever fresh page-cache memory is expensive (seen in VMs: 3 s of CPU for 1 GiB written).
// Partial pages at the ends of a run go through the page cache; the kernel keeps both coherent.
// Without O_DIRECT (tmpfs on older kernels, some network file systems), or after any EINVAL,
// everything goes through the page cache.
const PAGE = 4096;
const DIRECT_BYTES = 8 * 1024 * 1024;
const MIN_DIRECT_RUN = 64 * 1024;
/** WebAssembly.Memory (not in the TypeScript libraries this package compiles with). */
const WasmMemory = (
  globalThis as unknown as {
    WebAssembly: {
      Memory: new (d: { initial: number; maximum: number; shared: boolean }) => { buffer: SharedArrayBuffer };
    };
  }
).WebAssembly.Memory;
let directFd: number | undefined;
/** Aligned memory to copy runs into that do not lie on memory pages; made when first needed. */
let copyBuffer: Buffer | undefined;
/** Bytes written (verifiers) or read (hasher) with direct I/O, for diagnostics and tests. */
let directBytes = 0;
if (file !== undefined && wantDirect && constants.O_DIRECT !== undefined) {
  try {
    directFd = openSync(file, constants.O_RDWR | constants.O_DIRECT);
  } catch {
    directFd = undefined;
  }
}

/** DIRECT_BYTES of memory on a page boundary (WebAssembly memory is), as O_DIRECT needs. */
function makeAligned(): Buffer {
  const pages = Math.ceil(DIRECT_BYTES / 65536);
  return Buffer.from(new WasmMemory({ initial: pages, maximum: pages, shared: true }).buffer);
}

/** Turns direct I/O off after an EINVAL (an alignment this file system does not take). */
function directFailed(err: unknown): void {
  if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
  directFd = undefined;
}

/** Copies the bytes [from, to) of the image out of a run of neighbouring pieces into `target`. */
function copyRun(run: { offset: number; data: Buffer }[], from: number, to: number, target: Buffer): void {
  for (const p of run) {
    const start = Math.max(from, p.offset);
    const end = Math.min(to, p.offset + p.data.length);
    if (start < end) p.data.copy(target, start - from, start - p.offset, end - p.offset);
  }
}

/** Writes bytes [from, to) of a run through the page cache. */
function writeBuffered(run: { offset: number; data: Buffer }[], from: number, to: number): void {
  const parts: Buffer[] = [];
  for (const p of run) {
    const start = Math.max(from, p.offset);
    const end = Math.min(to, p.offset + p.data.length);
    if (start < end) parts.push(p.data.subarray(start - p.offset, end - p.offset));
  }
  if (parts.length === 0) return;
  const written = writevSync(fd, parts, from);
  if (written !== to - from) {
    let at = from;
    for (const part of parts) {
      for (let done = 0; done < part.length;) done += writeSync(fd, part, done, part.length - done, at + done);
      at += part.length;
    }
  }
}

/** Writes a run of neighbouring pieces: whole pages directly when it can, the rest buffered. */
function writeRun(run: { offset: number; data: Buffer }[], from: number, to: number): void {
  const first = Math.ceil(from / PAGE) * PAGE;
  const last = Math.floor(to / PAGE) * PAGE;
  if (directFd === undefined || last - first < MIN_DIRECT_RUN) {
    writeBuffered(run, from, to);
    return;
  }
  writeBuffered(run, from, first);
  // In place when the run lies in one piece of page-aligned shared memory (see fetch-ranges.ts).
  const base = run[0]!.data;
  const at0 = base.byteOffset + (first - from);
  if (
    base.buffer instanceof SharedArrayBuffer &&
    at0 % PAGE === 0 &&
    run.every((p) => p.data.buffer === base.buffer && p.data.byteOffset === base.byteOffset + (p.offset - from))
  ) {
    const pages = Buffer.from(base.buffer, at0, last - first);
    try {
      for (let done = 0; done < pages.length;)
        done += writeSync(directFd, pages, done, pages.length - done, first + done);
      directBytes += pages.length;
    } catch (err) {
      directFailed(err);
      writeBuffered(run, first, last);
    }
    writeBuffered(run, last, to);
    return;
  }
  copyBuffer ??= makeAligned();
  for (let at = first; at < last;) {
    const end = Math.min(last, at + copyBuffer.length);
    copyRun(run, at, end, copyBuffer);
    try {
      for (let done = 0; done < end - at;) done += writeSync(directFd, copyBuffer, done, end - at - done, at + done);
      directBytes += end - at;
    } catch (err) {
      directFailed(err);
      writeBuffered(run, at, last);
      break;
    }
    at = end;
  }
  writeBuffered(run, last, to);
}

function verify(task: VerifyTask): void {
  const data = Buffer.from(task.data.buffer, task.data.byteOffset, task.data.byteLength);
  const pieces: { offset: number; data: Buffer }[] = [];
  for (const c of task.chunks) {
    const stored = data.subarray(c.at, c.at + c.size);
    let raw: Buffer;
    if (c.size === c.length) {
      // Stored as is (zstd did not make it smaller): no decompression, no copy.
      raw = stored;
    } else {
      try {
        raw = zstdDecompressSync(stored, {
          maxOutputLength: Math.max(1, c.length),
          chunkSize: Math.max(64, c.length),
        });
      } catch (err) {
        port.postMessage({ seq: task.seq, error: { kind: 'corrupt', chunk: c.id, message: (err as Error).message } });
        return;
      }
    }
    const actual = hash('sha256', raw, 'hex');
    if (raw.length !== c.length || actual !== c.id) {
      port.postMessage({ seq: task.seq, error: { kind: 'integrity', chunk: c.id, actual } });
      return;
    }
    for (const offset of c.offsets) pieces.push({ offset, data: raw });
  }
  pieces.sort((a, b) => a.offset - b.offset);
  try {
    for (let i = 0; i < pieces.length;) {
      let j = i + 1;
      let end = pieces[i]!.offset + pieces[i]!.data.length;
      while (j < pieces.length && pieces[j]!.offset === end) end += pieces[j++]!.data.length;
      writeRun(pieces.slice(i, j), pieces[i]!.offset, end);
      i = j;
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    port.postMessage({ seq: task.seq, error: { kind: 'io', code: e.code, message: e.message } });
    return;
  }
  port.postMessage({ seq: task.seq, directBytes });
}

// The hasher reads ahead: one buffer is read (on libuv's thread pool) while the other is hashed.
let readBuffers: Buffer[] | undefined;
let target = 0;
let pumping: Promise<void> | undefined;
let failure: Error | undefined;

interface Block {
  buffer: Buffer;
  /** File offset of buffer[0]. */
  start: number;
  /** Image bytes [from, to) of this block are final and read. */
  from: number;
  to: number;
}

/** Reads the final bytes from `from` (up to `limit`) into `buffer`. */
function readBlock(buffer: Buffer, from: number, limit: number): Promise<Block> {
  const direct = directFd;
  const start = direct !== undefined ? Math.floor(from / PAGE) * PAGE : from;
  const end =
    direct !== undefined
      ? Math.min(Math.ceil(limit / PAGE) * PAGE, start + buffer.length)
      : Math.min(limit, start + buffer.length);
  return new Promise<Block>((resolve, reject) => {
    read(direct ?? fd, buffer, 0, end - start, start, (err, n) => {
      if (err) {
        if (direct !== undefined && err.code === 'EINVAL') {
          directFd = undefined;
          resolve(readBlock(buffer, from, limit));
        } else reject(err);
        return;
      }
      if (direct !== undefined) directBytes += n;
      resolve({ buffer, start, from, to: Math.min(limit, start + n) });
    });
  });
}

async function pump(): Promise<void> {
  readBuffers ??=
    directFd !== undefined
      ? [makeAligned(), makeAligned()]
      : [Buffer.allocUnsafe(DIRECT_BYTES), Buffer.allocUnsafe(DIRECT_BYTES)];
  let turn = 0;
  let next: Promise<Block> | undefined = readBlock(readBuffers[turn++ % 2]!, hashed, target);
  while (next) {
    const block: Block = await next;
    if (block.to <= block.from) throw new Error(`the partial image ends before byte ${block.from}`);
    next = block.to < target ? readBlock(readBuffers[turn++ % 2]!, block.to, target) : undefined;
    imageHash.update(block.buffer.subarray(block.from - block.start, block.to - block.start));
    hashed = block.to;
  }
}

function hashTo(upTo: number): void {
  target = Math.max(target, upTo);
  if (pumping || hashed >= target) return;
  pumping = pump()
    .catch((err: unknown) => {
      failure = err as Error;
    })
    .finally(() => {
      pumping = undefined;
      if (failure === undefined && hashed < target) hashTo(target);
    });
}

async function digest(seq: number): Promise<void> {
  while (pumping) await pumping;
  if (failure !== undefined)
    port.postMessage({
      seq,
      error: { kind: 'io', code: (failure as NodeJS.ErrnoException).code, message: failure.message },
    });
  else port.postMessage({ seq, digest: imageHash.digest('hex'), hashed, directBytes });
}

// --- Encrypted chunks (the same scheme as ChunkCipher and decodeEncryptedChunk in the core) ---
const NONCE = Buffer.alloc(12);
const TAG = 16;
/** HMAC-SHA256 under one key, its pad blocks hashed once (as crypto/hmac.ts does). */
interface PreparedHmac {
  inner: Hash;
  outer: Hash;
}
/** Keyed chunk ids, and per-chunk AES-GCM keys; set by a 'keys' message, dropped by 'wipe'. */
let idHmac: PreparedHmac | undefined;
let keyHmac: PreparedHmac | undefined;

function prepare(key: Uint8Array): PreparedHmac {
  const k = Buffer.alloc(64);
  k.set(key);
  const pad = Buffer.alloc(64);
  for (let i = 0; i < 64; i++) pad[i] = k[i]! ^ 0x36;
  const inner = createHash('sha256').update(pad);
  for (let i = 0; i < 64; i++) pad[i] = k[i]! ^ 0x5c;
  const outer = createHash('sha256').update(pad);
  k.fill(0);
  pad.fill(0);
  return { inner, outer };
}

function hmacOf(h: PreparedHmac, data: Uint8Array): Buffer {
  return h.outer.copy().update(h.inner.copy().update(data).digest()).digest();
}

function setKeys(m: { seq: number; keys: Uint8Array }): void {
  const keys = Buffer.from(m.keys.buffer, m.keys.byteOffset, m.keys.byteLength);
  idHmac = prepare(keys.subarray(0, 32));
  keyHmac = prepare(keys.subarray(32, 64));
  keys.fill(0);
  port.postMessage({ seq: m.seq });
}

/**
 * Decrypts, decompresses and checks every chunk of a fetched range; the plaintexts go back one
 * after another in one buffer the main thread takes over (transferred, not copied).
 */
function decode(task: DecodeTask): void {
  const data = Buffer.from(task.data.buffer, task.data.byteOffset, task.data.byteLength);
  const fail = (kind: string, chunk: string, message?: string): void =>
    port.postMessage({ seq: task.seq, error: { kind, chunk, ...(message ? { message } : {}) } });
  if (!idHmac || !keyHmac) {
    fail('io', '', 'no chunk keys');
    return;
  }
  const out = Buffer.alloc(task.chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of task.chunks) {
    const sealed = data.subarray(c.at, c.at + c.size);
    if (sealed.length < TAG) {
      out.fill(0);
      fail('decrypt', c.id);
      return;
    }
    const key = hmacOf(keyHmac, Buffer.from(c.id, 'hex'));
    let packed: Buffer;
    try {
      const d = createDecipheriv('aes-256-gcm', key, NONCE);
      d.setAuthTag(sealed.subarray(sealed.length - TAG));
      packed = d.update(sealed.subarray(0, sealed.length - TAG));
      d.final();
    } catch (err) {
      out.fill(0);
      fail('decrypt', c.id, (err as Error).message);
      return;
    } finally {
      key.fill(0);
    }
    let plain = packed;
    if (packed.length !== c.length) {
      try {
        plain = zstdDecompressSync(packed, {
          maxOutputLength: Math.max(1, c.length),
          chunkSize: Math.max(64, c.length),
        });
      } catch (err) {
        packed.fill(0);
        out.fill(0);
        fail('corrupt', c.id, (err as Error).message);
        return;
      }
      packed.fill(0);
    }
    const ok = plain.length === c.length && hmacOf(idHmac, plain).toString('hex') === c.id;
    if (ok) out.set(plain, at);
    plain.fill(0);
    if (!ok) {
      out.fill(0);
      fail('integrity', c.id);
      return;
    }
    at += c.length;
  }
  // Buffer.alloc of a small size comes from Node's shared pool, which cannot be transferred.
  const owned = out.byteOffset === 0 && out.byteLength === out.buffer.byteLength;
  const plainBytes = owned ? out : Buffer.from(new Uint8Array(out).buffer);
  if (!owned) out.fill(0);
  port.postMessage({ seq: task.seq, plain: plainBytes }, [plainBytes.buffer]);
}

port.on('message', (m: Message) => {
  if (m.type === 'verify') verify(m);
  else if (m.type === 'decode') decode(m);
  else if (m.type === 'keys') setKeys(m);
  else if (m.type === 'wipe') {
    // Node offers no way to zero a hash state: the prepared states are dropped.
    idHmac = undefined;
    keyHmac = undefined;
    port.postMessage({ seq: m.seq });
  } else if (m.type === 'hash') hashTo(m.upTo);
  else void digest(m.seq);
});
