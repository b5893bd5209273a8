// The management console's routes (issue 16): `/` and `/console/*` (the built front end),
// `/v1/console/session` (sign-in, the session, sign-out) and `GET /v1/admin/stream` (live
// updates). http.ts hands these paths here and keeps everything else.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { AdminApi } from './admin-http.js';
import { CONSOLE_SECURITY_HEADERS, serveConsoleFile } from './console-static.js';
import { AdminStream } from './console-stream.js';
import { ApiError, errorReply } from './errors.js';
import { parseBody } from './http.js';
import type { ServerStore } from './store/types.js';

/** The console part of {@link createManagementServer}'s options. */
export interface ConsoleOptions {
  /**
   * The built console (the vite output, `packages/server/console/dist`): served at
   * `/console/`. Without it the session API and the stream still work (for another front end).
   */
  readonly dir?: string | undefined;
}

/** What {@link createConsoleRoutes} needs. */
export interface ConsoleRoutesOptions {
  readonly console?: ConsoleOptions | undefined;
  readonly admin?: AdminApi | undefined;
  readonly store: ServerStore;
  readonly onError?: ((err: unknown, request: { method: string; path: string }) => void) | undefined;
}

const SignInBody = z.strictObject({ user: z.string().min(1).max(256), password: z.string().min(1).max(1024) });
const MAX_SIGN_IN_BODY = 16 * 1024;

function sendJson(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...CONSOLE_SECURITY_HEADERS,
    ...extra,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

async function readSmallBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_SIGN_IN_BODY)
      throw new ApiError(
        413,
        'TANDEM_TOO_LARGE',
        'too-large',
        `A console request is at most ${MAX_SIGN_IN_BODY} bytes.`,
      );
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * Makes the console's request handler: it answers the console's paths and returns true, or
 * returns false for every other path (http.ts serves those).
 */
export function createConsoleRoutes(o: ConsoleRoutesOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const stream = new AdminStream(o.store);
  const dir = o.console?.dir;

  async function session(req: IncomingMessage, res: ServerResponse, method: string, path: string): Promise<void> {
    const sessions = o.admin?.sessions;
    if (!sessions)
      throw new ApiError(404, 'TANDEM_NOT_FOUND', 'no-route', 'Console sign-in is not enabled on this server.');
    if (path === '/v1/console/session' && method === 'POST') {
      const b = parseBody(SignInBody, await readSmallBody(req));
      const { secret, reply } = await sessions.signIn(b.user, b.password, req.socket.remoteAddress ?? 'unknown');
      return sendJson(res, 200, reply, { 'set-cookie': sessions.cookie(secret) });
    }
    const found = await sessions.find(req.headers).catch((err: unknown) => {
      // An expired or unknown cookie is cleared with the refusal.
      res.setHeader('set-cookie', sessions.cookie(''));
      throw err;
    });
    if (!found) throw new ApiError(401, 'TANDEM_AUTH', 'no-session', 'Not signed in to the console.');
    if (path === '/v1/console/session' && method === 'GET') return sendJson(res, 200, sessions.describe(found));
    if (
      (path === '/v1/console/session' && method === 'DELETE') ||
      (path === '/v1/console/logout' && method === 'POST')
    ) {
      sessions.checkCsrf(found, req.headers);
      await sessions.signOut(found);
      return sendJson(res, 200, { ok: true }, { 'set-cookie': sessions.cookie('') });
    }
    throw new ApiError(405, 'TANDEM_INVALID_INPUT', 'method', `${method} ${path} is not part of the console API.`);
  }

  async function openStream(req: IncomingMessage, res: ServerResponse, method: string): Promise<void> {
    if (!o.admin)
      throw new ApiError(404, 'TANDEM_NOT_FOUND', 'no-route', 'The admin API is not enabled on this server.');
    if (method !== 'GET') throw new ApiError(405, 'TANDEM_INVALID_INPUT', 'method', 'The stream takes GET.');
    const admin = o.admin;
    await admin.authenticate(req.headers, { csrf: false });
    const bearer = req.headers.authorization !== undefined;
    const headers = { ...req.headers };
    await stream.open(
      res,
      async () => bearer || (await admin.authenticate(headers, { csrf: false, touch: false }).then(() => true)),
      {
        ...CONSOLE_SECURITY_HEADERS,
      },
    );
  }

  return (req, res) => {
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    let work: Promise<void>;
    if (dir !== undefined && (path === '/' || path === '/console') && (method === 'GET' || method === 'HEAD')) {
      res.writeHead(302, { ...CONSOLE_SECURITY_HEADERS, location: '/console/', 'content-length': 0 });
      res.end();
      return true;
    }
    if (path.startsWith('/console/') && dir !== undefined) work = serveConsoleFile(res, dir, path, method);
    else if (path === '/v1/console/session' || path === '/v1/console/logout') work = session(req, res, method, path);
    else if (path === '/v1/admin/stream') work = openStream(req, res, method);
    else return false;
    work.catch((err: unknown) => {
      const { status, body } = errorReply(err);
      if (status >= 500) o.onError?.(err, { method, path });
      if (res.headersSent) res.destroy();
      else sendJson(res, status, body);
    });
    return true;
  };
}
