// Calls to a management server's admin API over HTTP(S) (`tandem policy explain --server`).
import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { InvalidInputError, NotFoundError, TandemError } from '@tandem/core';
import type { CliContext } from '../context.js';
import { serverDirOf } from './server.js';

/** Where the admin token and CA come from: options, `TANDEM_ADMIN_TOKEN`, else the local server directory. */
export interface RemoteAdminOptions {
  readonly server: string;
  readonly adminTokenFile?: string | undefined;
  readonly ca?: string | undefined;
  readonly dir?: string | undefined;
}

async function optionalFile(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * POSTs `body` to `<server>/v1/admin/<action>` with the admin token; the reply's JSON, or the
 * server's error as a TandemError with its code and message.
 */
export async function callAdmin(
  ctx: CliContext,
  o: RemoteAdminOptions,
  action: string,
  body: unknown,
): Promise<unknown> {
  let url: URL;
  try {
    url = new URL(`/v1/admin/${action}`, o.server);
  } catch {
    throw new InvalidInputError(`--server ${o.server} is not a URL: expected https://host:8443.`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new InvalidInputError(`--server ${o.server} is not an http(s) URL: expected https://host:8443.`);
  const dir = serverDirOf(ctx, o.dir);
  const token =
    process.env['TANDEM_ADMIN_TOKEN'] ?? (await optionalFile(o.adminTokenFile ?? join(dir, 'admin-token')))?.trim();
  if (!token)
    throw new NotFoundError(
      `No admin token for ${o.server}: give --admin-token-file FILE (the server directory's admin-token) or set TANDEM_ADMIN_TOKEN.`,
    );
  const ca = o.ca !== undefined ? await readFile(o.ca, 'utf8') : await optionalFile(join(dir, 'tls', 'server.crt'));
  const text = JSON.stringify(body);
  const reply = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(
      url,
      {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(text),
        },
        ...(url.protocol === 'https:' && ca !== undefined ? { ca } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', (err) =>
      reject(
        new TandemError(`The management server at ${url.origin} cannot be reached (${err.message}).`, {
          code: 'TANDEM_HOST',
          fault: 'host',
          retryable: true,
          cause: err,
        }),
      ),
    );
    req.end(text);
  });
  let data: unknown;
  try {
    data = JSON.parse(reply.text);
  } catch {
    throw new TandemError(`The management server at ${url.origin} answered ${reply.status} without JSON.`, {
      code: 'TANDEM_HOST',
      fault: 'host',
    });
  }
  if (reply.status >= 400) {
    const e = data as { code?: string; message?: string; retryable?: boolean };
    throw new TandemError(e.message ?? `The management server answered ${reply.status}.`, {
      code: e.code ?? 'TANDEM_HOST',
      fault: reply.status >= 500 ? 'host' : 'user',
      retryable: e.retryable ?? false,
    });
  }
  return data;
}
