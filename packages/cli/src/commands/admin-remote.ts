// Calls to a management server's admin API over HTTP(S) (`tandem policy explain --server`).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidInputError, NotFoundError } from '@tandem/core';
import { ManagementTransport, readManagementReply } from '@tandem/core/management';
import type { CliContext } from '../context.js';
import { serverDirOf } from './server.js';

/** Where the admin token and CA come from: options, `TANDEM_ADMIN_TOKEN`, else the local server directory. */
export interface RemoteAdminOptions {
  readonly server: string;
  readonly adminTokenFile?: string | undefined;
  readonly ca?: string | undefined;
  readonly dir?: string | undefined;
  /** A request's time limit in ms (default: the transport's, 30 s). */
  readonly timeoutMs?: number | undefined;
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
 * POSTs `body` to `<server>/v1/admin/<action>` with the admin token, through the management
 * server's one transport (its time limit, its message for an untrusted certificate); the reply's
 * JSON, or the server's error as a {@link ManagementError} with its code and message.
 */
export async function callAdmin(
  ctx: CliContext,
  o: RemoteAdminOptions,
  action: string,
  body: unknown,
): Promise<unknown> {
  let transport: ManagementTransport;
  try {
    transport = new ManagementTransport({
      baseUrl: o.server,
      caHint: '--ca FILE',
      ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
    });
  } catch (cause) {
    throw new InvalidInputError(`--server ${o.server} is not an http(s) URL: expected https://host:8443.`, { cause });
  }
  const dir = serverDirOf(ctx, o.dir);
  const token =
    process.env['TANDEM_ADMIN_TOKEN'] ?? (await optionalFile(o.adminTokenFile ?? join(dir, 'admin-token')))?.trim();
  if (!token)
    throw new NotFoundError(
      `No admin token for ${o.server}: give --admin-token-file FILE (the server directory's admin-token) or set TANDEM_ADMIN_TOKEN.`,
    );
  const ca = o.ca !== undefined ? await readFile(o.ca, 'utf8') : await optionalFile(join(dir, 'tls', 'server.crt'));
  if (ca !== undefined)
    transport = new ManagementTransport({
      baseUrl: transport.baseUrl,
      ca,
      caHint: '--ca FILE',
      timeoutMs: transport.timeoutMs,
    });
  const reply = await transport.send({
    method: 'POST',
    path: `/v1/admin/${action}`,
    body: Buffer.from(JSON.stringify(body), 'utf8'),
    headers: { authorization: `Bearer ${token}` },
  });
  return readManagementReply(reply);
}
