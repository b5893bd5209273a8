// A static file server for benchmarks: HTTP/1.1 keep-alive, single byte ranges, and counters
// of requests and body bytes sent (GET /__stats returns them, POST /__reset clears them).
//   node bench/lib/static-server.mjs ROOT  -> prints the port on stdout
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import { join, normalize } from 'node:path';

const root = process.argv[2];
let stats = { requests: 0, bytes: 0 };
const server = http.createServer(async (req, res) => {
  const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  if (path === '/__stats') return res.end(JSON.stringify(stats));
  if (path === '/__reset') {
    stats = { requests: 0, bytes: 0 };
    return res.end('{}');
  }
  stats.requests++;
  const file = join(root, normalize(path));
  let st;
  try {
    st = await stat(file);
    if (!st.isFile()) throw new Error('not a file');
  } catch {
    res.writeHead(404).end();
    return;
  }
  let start = 0;
  let end = st.size - 1;
  const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  if (m) {
    start = Number(m[1]);
    end = m[2] ? Math.min(Number(m[2]), st.size - 1) : st.size - 1;
    res.writeHead(206, {
      'content-length': end - start + 1,
      'content-range': `bytes ${start}-${end}/${st.size}`,
      'accept-ranges': 'bytes',
    });
  } else res.writeHead(200, { 'content-length': st.size, 'accept-ranges': 'bytes' });
  if (req.method === 'HEAD') return res.end();
  stats.bytes += end - start + 1;
  createReadStream(file, { start, end, highWaterMark: 1024 * 1024 }).pipe(res);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
