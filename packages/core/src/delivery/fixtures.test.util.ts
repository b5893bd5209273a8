// Test fixtures for delivery tests (not part of the package): images, workspaces, a real
// static HTTP server on loopback with fault injection.
import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

/** Random-looking bytes, `n` at a time, the same for the same seed (AES-256-CTR of zeros). */
export function seededBytes(seed: number): (n: number) => Buffer {
  const key = Buffer.alloc(32);
  key.writeUInt32LE(seed >>> 0, 0);
  const stream = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return (n) => stream.update(Buffer.alloc(n));
}

/** A disk-like image: random data with runs of zeros (`bytes` gives the data; seed it for a fixed image). */
export function makeImage(
  size: number,
  zeroRuns: readonly [start: number, length: number][] = [],
  bytes: (n: number) => Buffer = randomBytes,
): Buffer {
  const image = bytes(size);
  for (const [start, length] of zeroRuns) image.fill(0, start, Math.min(size, start + length));
  return image;
}

/** A new version of an image: `count` scattered overwrites and inserts of `size` bytes each. */
export function changeImage(
  image: Buffer,
  count: number,
  size: number,
  bytes: (n: number) => Buffer = randomBytes,
): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  const step = Math.floor(image.length / (count + 1));
  for (let i = 1; i <= count; i++) {
    const pos = i * step;
    parts.push(image.subarray(at, pos));
    parts.push(bytes(size));
    // Alternate overwrites (skip the old bytes) and inserts (keep them).
    at = i % 2 === 0 ? pos + size : pos;
  }
  parts.push(image.subarray(at));
  return Buffer.concat(parts);
}

/** Writes a workspace file and its image into `dir`; returns the workspace file's path. */
export async function writeWorkspace(
  dir: string,
  options: { name: string; version: string; image: Uint8Array; imageName?: string },
): Promise<string> {
  const imageName = options.imageName ?? 'disk.qcow2';
  await mkdir(join(dir, 'images'), { recursive: true });
  await writeFile(join(dir, 'images', imageName), options.image);
  const file = join(dir, 'tandem.workspace.yaml');
  await writeFile(
    file,
    [
      '# a test workspace',
      'apiVersion: tandem/v1',
      'kind: Workspace',
      `metadata: { name: ${options.name}, version: ${options.version} }`,
      'spec:',
      `  image: { source: ./images/${imageName}, format: qcow2 }`,
      '  hardware:',
      '    memory: { fixedMiB: 512 }',
      '',
    ].join('\n'),
  );
  return file;
}

/** One request the test server saw. */
export interface SeenRequest {
  method: string;
  path: string;
  range?: string;
  status: number;
  bytes: number;
}

/** Decides a request's fate: return true when it handled (answered or broke) the request. */
export type Fault = (req: http.IncomingMessage, res: http.ServerResponse, path: string, file: Buffer | null) => boolean;

/** A static file server on 127.0.0.1 serving `root`, with byte ranges, keep-alive and fault hooks. */
export interface TestServer {
  readonly url: string;
  readonly requests: SeenRequest[];
  fault: Fault | undefined;
  /** Delay before each body, in ms (lets a test kill a pull midway). */
  delayMs: number;
  close(): Promise<void>;
}

export async function serveDirectory(root: string): Promise<TestServer> {
  const requests: SeenRequest[] = [];
  const state: { fault: Fault | undefined; delayMs: number } = { fault: undefined, delayMs: 0 };
  const server = http.createServer((req, res) => {
    void (async () => {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/+/, '');
      let file: Buffer | null = null;
      try {
        if (!path.includes('..') && (await stat(join(root, path))).isFile()) file = await readFile(join(root, path));
      } catch {
        file = null;
      }
      const seen: SeenRequest = {
        method: req.method ?? 'GET',
        path,
        ...(req.headers.range ? { range: req.headers.range } : {}),
        status: 0,
        bytes: 0,
      };
      requests.push(seen);
      if (state.delayMs > 0) await new Promise((r) => setTimeout(r, state.delayMs));
      if (state.fault?.(req, res, path, file)) {
        seen.status = res.statusCode;
        return;
      }
      if (!file) {
        seen.status = 404;
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      let body = file;
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      if (m) {
        const from = Number(m[1]);
        const to = Math.min(Number(m[2]), file.length - 1);
        body = file.subarray(from, to + 1);
        res.writeHead(206, {
          'content-range': `bytes ${from}-${to}/${file.length}`,
          'content-length': body.length,
          'accept-ranges': 'bytes',
        });
        seen.status = 206;
      } else {
        res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' });
        seen.status = 200;
      }
      seen.bytes = req.method === 'HEAD' ? 0 : body.length;
      res.end(req.method === 'HEAD' ? undefined : body);
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    requests,
    get fault() {
      return state.fault;
    },
    set fault(f) {
      state.fault = f;
    },
    get delayMs() {
      return state.delayMs;
    },
    set delayMs(ms) {
      state.delayMs = ms;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
