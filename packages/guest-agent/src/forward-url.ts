import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { dirname } from 'node:path';
import { z } from 'zod';

/** The default local socket of `forward-url` (Linux) or its named pipe (Windows). */
export function defaultUrlSocket(platform: NodeJS.Platform = process.platform): string {
  return platform === 'win32' ? '\\\\.\\pipe\\tandem-guest-agent-url' : '/run/tandem-guest-agent/url.sock';
}

const RequestLine = z.strictObject({ url: z.string().min(1).max(8192) });
const ReplyLine = z.strictObject({ ok: z.boolean(), message: z.string() });

/** Only web URLs leave the guest: a file: or javascript: URL means nothing on the host. */
export function isForwardableUrl(text: string): boolean {
  try {
    const u = new URL(text);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

/**
 * The agent's end of `forward-url`: a local socket any user of the guest may write one line of
 * JSON to (`{"url": ...}`); the agent sends it to the host as a `url-to-host` event and answers
 * `{"ok", "message"}`. It cannot do anything else: the host decides with its policy.
 */
export function serveUrlSocket(
  path: string,
  forward: (url: string) => { ok: boolean; message: string },
): Promise<Server> {
  if (!path.startsWith('\\\\')) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    rmSync(path, { force: true });
  }
  const server = createServer((socket) => {
    let buf = '';
    socket.setEncoding('utf8');
    socket.on('error', () => undefined);
    socket.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > 16 * 1024) {
        socket.end(`${JSON.stringify({ ok: false, message: 'request too long' })}\n`);
        return;
      }
      const nl = buf.indexOf('\n');
      if (nl === -1) return;
      let reply: { ok: boolean; message: string };
      try {
        const req = RequestLine.parse(JSON.parse(buf.slice(0, nl)));
        reply = isForwardableUrl(req.url)
          ? forward(req.url)
          : { ok: false, message: 'only http and https URLs are forwarded' };
      } catch {
        reply = { ok: false, message: 'expected one line of JSON: {"url": "..."}' };
      }
      socket.end(`${JSON.stringify(reply)}\n`);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.removeListener('error', reject);
      if (!path.startsWith('\\\\')) chmodSync(path, 0o666);
      resolve(server);
    });
  });
}

/** The client: `tandem-guest-agent forward-url URL`. Resolves with the agent's answer. */
export function forwardUrl(path: string, url: string): Promise<{ ok: boolean; message: string }> {
  return new Promise((resolve) => {
    const socket = connect(path);
    let buf = '';
    socket.setEncoding('utf8');
    socket.once('connect', () => socket.write(`${JSON.stringify({ url })}\n`));
    socket.on('data', (c: string) => (buf += c));
    socket.once('error', (err) => resolve({ ok: false, message: `the guest agent is not running (${err.message})` }));
    socket.once('end', () => {
      try {
        resolve(ReplyLine.parse(JSON.parse(buf.trim())));
      } catch {
        resolve({ ok: false, message: 'the guest agent gave no answer' });
      }
    });
  });
}
