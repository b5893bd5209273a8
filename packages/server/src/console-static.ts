// Static files of the management console (issue 16): the built front end, with a strict
// Content-Security-Policy, no directory traversal, and long caching for hashed assets.
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { extname, join, sep } from 'node:path';

/** The console's Content-Security-Policy: no inline scripts or styles, nothing from elsewhere. */
export const CONSOLE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/** Headers on every console response (files and the console's JSON). */
export const CONSOLE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
};

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};

function plain(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, {
    ...CONSOLE_SECURITY_HEADERS,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

/**
 * Serves `GET`/`HEAD /console/...` from `dir` (the vite build). `/console/` and any path without
 * an extension that is not a file give `index.html` (client-side routes); a missing file with an
 * extension is a 404. Paths are decoded once and refused when they hold `..`, a backslash, a
 * NUL or a leading dot segment, and the resolved real path must stay inside `dir`.
 */
export async function serveConsoleFile(
  res: ServerResponse,
  dir: string,
  urlPath: string,
  method: string,
): Promise<void> {
  if (method !== 'GET' && method !== 'HEAD') return plain(res, 405, 'The console takes GET.');
  let rel: string;
  try {
    rel = decodeURIComponent(urlPath.slice('/console/'.length));
  } catch {
    return plain(res, 400, 'The path is not valid URL encoding.');
  }
  const segments = rel.split('/');
  if (rel.includes('\\') || rel.includes('\0') || segments.some((s) => s === '..' || s.startsWith('.')))
    return plain(res, 400, 'The path names something outside the console.');
  const root = await realpath(dir).catch(() => undefined);
  if (!root) return plain(res, 404, 'The console is not built on this server.');
  let file = rel === '' ? join(root, 'index.html') : join(root, ...segments);
  let info = await stat(file).catch(() => undefined);
  if (!info?.isFile() && extname(rel) === '') {
    file = join(root, 'index.html');
    info = await stat(file).catch(() => undefined);
  }
  if (!info?.isFile()) return plain(res, 404, `${urlPath} is not part of the console.`);
  const real = await realpath(file);
  if (real !== root && !real.startsWith(root + sep)) return plain(res, 404, `${urlPath} is not part of the console.`);
  const hashed = rel.startsWith('assets/');
  res.writeHead(200, {
    ...CONSOLE_SECURITY_HEADERS,
    'content-type': TYPES[extname(real).toLowerCase()] ?? 'application/octet-stream',
    'content-length': info.size,
    'cache-control': hashed ? 'public, max-age=31536000, immutable' : 'no-cache',
  });
  if (method === 'HEAD') return void res.end();
  await new Promise<void>((resolve) => {
    const stream = createReadStream(real);
    stream.on('error', () => {
      res.destroy();
      resolve();
    });
    stream.on('end', resolve);
    stream.pipe(res);
  });
}
