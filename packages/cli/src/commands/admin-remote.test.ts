// callAdmin (`tandem policy explain --server`) goes through the management server's one transport:
// its time limit and its message for a certificate this machine does not trust, against real
// local HTTP and HTTPS servers (a self-signed certificate made by openssl).
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManagementError } from '@tandem/core/management';
import { makeSelfSignedCertificate } from '@tandem/server';
import type { CliContext } from '../context.js';
import { callAdmin } from './admin-remote.js';

let root: string;
const servers: (Server | HttpsServer)[] = [];
const ctx = (): CliContext => ({
  stateDir: join(root, 'state'),
  json: true,
  verbose: false,
  result: () => undefined,
  line: () => undefined,
  info: () => undefined,
});

async function listen(server: Server | HttpsServer): Promise<string> {
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return String((server.address() as AddressInfo).port);
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tandem-admin-remote-'));
  await writeFile(join(root, 'admin-token'), 'test-admin-token\n');
});
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  await rm(root, { recursive: true, force: true });
});

describe('callAdmin', () => {
  it('gives up on a server that never answers after its time limit, as a retryable unreachable error', async () => {
    const seen: string[] = [];
    // Accepts the request and never answers it.
    const port = await listen(createHttpServer((req) => void seen.push(req.headers.authorization ?? '')));
    const err = await callAdmin(ctx(), { server: `http://127.0.0.1:${port}`, dir: root, timeoutMs: 300 }, 'explain', {
      workspace: 'erp',
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ManagementError);
    expect(err).toMatchObject({ code: 'TANDEM_UNREACHABLE', retryable: true, reason: 'timeout' });
    expect((err as Error).message).toMatch(/did not answer within 300 ms/);
    // Its own authorization: the admin token, not a device signature.
    expect(seen).toEqual(['Bearer test-admin-token']);
  });

  it('says how to pass the CA when the server presents a certificate this machine does not trust', async () => {
    const tls = await makeSelfSignedCertificate(join(root, 'tls-elsewhere'), ['127.0.0.1']);
    const [key, cert] = await Promise.all([readFile(tls.keyFile, 'utf8'), readFile(tls.certFile, 'utf8')]);
    const answer = (_req: unknown, res: ServerResponse): void => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    };
    const port = await listen(createHttpsServer({ key, cert }, answer));
    const server = `https://127.0.0.1:${port}`;
    const err = await callAdmin(ctx(), { server, dir: root }, 'explain', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ManagementError);
    expect(err).toMatchObject({ code: 'TANDEM_AUTH', reason: 'untrusted-certificate' });
    expect((err as Error).message).toMatch(/certificate this device does not trust .*Pass its CA \(--ca FILE\)/);
    // With the certificate as the CA, the same call is answered.
    await expect(callAdmin(ctx(), { server, dir: root, ca: tls.certFile }, 'explain', {})).resolves.toEqual({
      ok: true,
    });
  });

  it('refuses a server that is not an http(s) URL, naming it', async () => {
    await expect(callAdmin(ctx(), { server: 'ftp://x', dir: root }, 'explain', {})).rejects.toThrow(
      /--server ftp:\/\/x is not an http\(s\) URL/,
    );
  });
});
