import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CancelledError, HostError, TandemError, TimeoutError } from '../../errors.js';
import { HttpStore } from './http.js';

const DATA = randomBytes(3 << 20);

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

interface Served {
  url: string;
  sockets: Set<Socket>;
  requests: number;
  handler: Handler;
  close(): Promise<void>;
}

/** Serves DATA at /packs/x.pack with single byte ranges; `handler` can be swapped per test. */
async function serve(): Promise<Served> {
  const sockets = new Set<Socket>();
  const state: Served = {
    url: '',
    sockets,
    requests: 0,
    handler: ranges,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
  const server = http.createServer((req, res) => {
    state.requests++;
    state.handler(req, res);
  });
  server.on('connection', (s: Socket) => sockets.add(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  servers.push(state);
  return state;
}

function ranges(req: http.IncomingMessage, res: http.ServerResponse): void {
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
  if (!m) {
    res.writeHead(200, { 'content-length': DATA.length }).end(DATA);
    return;
  }
  const [from, last] = [Number(m[1]), Number(m[2])];
  res
    .writeHead(206, { 'content-length': last - from + 1, 'content-range': `bytes ${from}-${last}/${DATA.length}` })
    .end(DATA.subarray(from, last + 1));
}

const servers: Served[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function failure(p: Promise<unknown>): Promise<TandemError> {
  try {
    await p;
  } catch (err) {
    if (TandemError.is(err)) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

describe('direct reads of plain-HTTP ranges', () => {
  it('reads ranges into the caller buffer over one keep-alive connection', async () => {
    const s = await serve();
    const seen: (string | undefined)[] = [];
    s.handler = (req, res) => {
      seen.push(req.headers.connection);
      ranges(req, res);
    };
    const store = new HttpStore(s.url);
    const into = Buffer.allocUnsafeSlow(2 << 20);
    for (const [from, length] of [
      [0, 1 << 20],
      [12345, 2 << 20],
      [(3 << 20) - 10, 10],
    ] as const) {
      const got = await store.getRange('packs/x.pack', from, length, { into });
      expect(got.buffer).toBe(into.buffer);
      expect(got.equals(DATA.subarray(from, from + length))).toBe(true);
    }
    expect(s.sockets.size).toBe(1);
    // node:http's agent would say `Connection: keep-alive`; the direct client says nothing.
    expect(seen).toEqual([undefined, undefined, undefined]);
    expect(store.stats().bytesReceived).toBe((1 << 20) + (2 << 20) + 10);
    expect(store.stats().requests).toBe(3);
    store.close();
  });

  it('asks again through node:http when the server sends a chunked body, and keeps doing so for that host', async () => {
    const s = await serve();
    s.handler = (req, res) => {
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '')!;
      const [from, last] = [Number(m[1]), Number(m[2])];
      // No content-length: node writes the body chunked.
      res.writeHead(206, { 'content-range': `bytes ${from}-${last}/${DATA.length}` });
      res.write(DATA.subarray(from, from + 100));
      res.end(DATA.subarray(from + 100, last + 1));
    };
    const store = new HttpStore(s.url);
    const got = await store.getRange('packs/x.pack', 5000, 70_000);
    expect(got.equals(DATA.subarray(5000, 75_000))).toBe(true);
    expect(s.requests).toBe(2); // the direct attempt, then node:http
    const again = await store.getRange('packs/x.pack', 0, 1000);
    expect(again.equals(DATA.subarray(0, 1000))).toBe(true);
    expect(s.requests).toBe(3);
    expect(store.stats().requests).toBe(2);
    store.close();
  });

  it('reports error answers with their status and body, in either framing', async () => {
    const s = await serve();
    s.handler = (_req, res) => {
      res.writeHead(403, { 'content-length': 13 }).end('AccessDenied!');
    };
    const store = new HttpStore(s.url, { retries: 0 });
    const err = await failure(store.getRange('packs/x.pack', 0, 100));
    expect(err).toBeInstanceOf(HostError);
    expect(err.details['status']).toBe(403);
    expect(err.details['body']).toBe('AccessDenied!');
    s.handler = (_req, res) => {
      res.writeHead(503);
      res.end('busy');
    };
    const busy = await failure(store.getRange('packs/x.pack', 0, 100));
    expect(busy.details['status']).toBe(503);
    expect(busy.retryable).toBe(true);
    // A connection that carried a body we did not read is not reused.
    s.handler = ranges;
    expect((await store.getRange('packs/x.pack', 7, 9)).equals(DATA.subarray(7, 16))).toBe(true);
    store.close();
  });

  it('resumes a range after the connection drops mid-body', async () => {
    const s = await serve();
    let drops = 0;
    s.handler = (req, res) => {
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '')!;
      const [from, last] = [Number(m[1]), Number(m[2])];
      res.writeHead(206, {
        'content-length': last - from + 1,
        'content-range': `bytes ${from}-${last}/${DATA.length}`,
      });
      if (drops++ === 0) {
        res.write(DATA.subarray(from, from + 300_000), () => res.destroy());
        return;
      }
      res.end(DATA.subarray(from, last + 1));
    };
    const store = new HttpStore(s.url, { retryDelayMs: 1 });
    const got = await store.getRange('packs/x.pack', 1000, 1 << 20);
    expect(got.equals(DATA.subarray(1000, 1000 + (1 << 20)))).toBe(true);
    expect(drops).toBe(2);
    store.close();
  });

  it('refuses a body larger than the range asked for, before reading it', async () => {
    const s = await serve();
    s.handler = (_req, res) => {
      res.writeHead(206, { 'content-length': 5000, 'content-range': `bytes 0-99/${DATA.length}` });
      res.end(DATA.subarray(0, 5000));
    };
    const store = new HttpStore(s.url, { retries: 0 });
    const err = await failure(store.getRange('packs/x.pack', 0, 100));
    expect(err.message).toMatch(/sent more bytes than the range asked for/);
    store.close();
  });

  it('times out a server that stalls mid-body, and cancels on an abort signal', async () => {
    const s = await serve();
    s.handler = (_req, res) => {
      res.writeHead(206, { 'content-length': 1000, 'content-range': `bytes 0-999/${DATA.length}` });
      res.write(DATA.subarray(0, 10));
    };
    const store = new HttpStore(s.url, { retries: 0, timeoutMs: 200 });
    const err = await failure(store.getRange('packs/x.pack', 0, 1000));
    expect(err).toBeInstanceOf(TimeoutError);
    const stop = new AbortController();
    const pending = store.getRange('packs/x.pack', 0, 1000, { signal: stop.signal });
    setTimeout(() => stop.abort(), 50);
    expect(await failure(pending)).toBeInstanceOf(CancelledError);
    store.close();
  });

  it('gives the same bytes with direct reads turned off', async () => {
    const s = await serve();
    const seen: (string | undefined)[] = [];
    s.handler = (req, res) => {
      seen.push(req.headers.connection);
      ranges(req, res);
    };
    const store = new HttpStore(s.url, { directReads: false });
    const got = await store.getRange('packs/x.pack', 77, 500_000, { into: Buffer.allocUnsafeSlow(1 << 20) });
    expect(got.equals(DATA.subarray(77, 500_077))).toBe(true);
    expect(seen).toEqual(['keep-alive']);
    store.close();
  });
});
