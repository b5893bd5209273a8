// A worker thread of a pull: verifies fetched chunks (SHA-256, after zstd for compressed ones) and writes them into
// the partial image, or hashes the image as it fills up. Self-contained (node: modules only) so
// it runs both from dist/ and, through Node's type stripping, from src/ in tests.
import { createHash, hash } from 'node:crypto';
import { openSync, readSync, writevSync, writeSync } from 'node:fs';
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

type Message = VerifyTask | { type: 'hash'; upTo: number } | { type: 'digest'; seq: number };

const port = parentPort!;
const { file } = workerData as { file: string };
const fd = openSync(file, 'r+');
const imageHash = createHash('sha256');
let hashed = 0;
const readBuffer = Buffer.allocUnsafe(8 * 1024 * 1024);

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
      const run = pieces.slice(i, j);
      const written = writevSync(
        fd,
        run.map((p) => p.data),
        run[0]!.offset,
      );
      if (written !== end - run[0]!.offset) {
        for (const p of run) {
          for (let done = 0; done < p.data.length;)
            done += writeSync(fd, p.data, done, p.data.length - done, p.offset + done);
        }
      }
      i = j;
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    port.postMessage({ seq: task.seq, error: { kind: 'io', code: e.code, message: e.message } });
    return;
  }
  // The range buffer goes back to the main thread to be filled again.
  const buffer = task.data.buffer as ArrayBuffer;
  port.postMessage({ seq: task.seq, buffer }, [buffer]);
}

function hashTo(upTo: number): void {
  while (hashed < upTo) {
    const n = readSync(fd, readBuffer, 0, Math.min(readBuffer.length, upTo - hashed), hashed);
    if (n === 0) break;
    imageHash.update(readBuffer.subarray(0, n));
    hashed += n;
  }
}

port.on('message', (m: Message) => {
  if (m.type === 'verify') verify(m);
  else if (m.type === 'hash') hashTo(m.upTo);
  else port.postMessage({ seq: m.seq, digest: imageHash.digest('hex'), hashed });
});
