import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AnyTandemEvent } from '@tandem/core';
import { openEndpointKeys } from '@tandem/core/crypto';
import { ManagementClient, ManagementError, ROUTES, SIGNATURE_HEADERS } from '@tandem/core/management';
import { afterEach, expect, it } from 'vitest';
import { managementUplink } from './uplink-management.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

function events(n: number): AnyTandemEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    type: 'session.transition',
    at: '2026-12-01T09:00:00.000Z',
    workspace: 'quickstart',
    session: 's1',
    data: { from: 'stopped', to: 'running', operation: 'start', vm: 'tandem-quickstart' },
  }));
}

async function receiver(answer: (n: number) => number) {
  const seen: { ids: string[]; signed: boolean }[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { events: { id: string }[] };
      seen.push({
        ids: body.events.map((e) => e.id),
        signed: typeof req.headers[SIGNATURE_HEADERS.signature] === 'string',
      });
      const status = req.url === ROUTES.events ? answer(seen.length) : 404;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify(
          status === 200
            ? { inserted: body.events.length, duplicates: 0 }
            : { code: 'TANDEM_STORE_UNAVAILABLE', message: 'database down', retryable: true },
        ),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.push(() => new Promise((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

async function client(url: string, attempts = 3) {
  const dir = await mkdtemp(join(tmpdir(), 'tandem-uplink-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const { device } = await openEndpointKeys(join(dir, 'keys'));
  return new ManagementClient({ baseUrl: url, device, attempts, retryDelayMs: 1 });
}

it('sends each batch signed, in parts the API takes, retrying a failing server', async () => {
  const r = await receiver((n) => (n === 1 ? 503 : 200));
  const uplink = managementUplink(await client(r.url));
  await uplink.send(events(1500), new AbortController().signal);
  // The first part failed once and was sent again; then the second part.
  expect(r.seen.map((s) => s.ids.length)).toEqual([1000, 1000, 500]);
  expect(r.seen.every((s) => s.signed)).toBe(true);
  expect(r.seen[1]?.ids).toEqual(r.seen[0]?.ids);
});

it('rejects with a typed, retryable error when the server stays down (the shipper keeps the batch)', async () => {
  const r = await receiver(() => 503);
  const uplink = managementUplink(await client(r.url, 2));
  const err = await uplink.send(events(3), new AbortController().signal).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ManagementError);
  expect(err).toMatchObject({ retryable: true, status: 503 });
});
