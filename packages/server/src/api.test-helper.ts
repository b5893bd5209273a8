// Test fixtures for the management API (not shipped): a server over the in-memory store and
// the test directory, on a loopback port, and endpoints with their own device keys.
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock, type Clock } from '@tandem/core';
import { openEndpointKeys, type DeviceKeys, type TrustedTime } from '@tandem/core/crypto';
import { ManagementClient, SIGNATURE_HEADERS, newNonce, signingInput } from '@tandem/core/management';
import { SignInThrottle } from '@tandem/core/identity';
import { AdminService } from './admin.js';
import type { ServerDirectory } from './directory-port.js';
import { AdminApi } from './admin-http.js';
import { createManagementServer, type ManagementHttpServer } from './http.js';
import { MemoryServerStore } from './memory-store.test-helper.js';
import { ServerSecrets } from './secrets.js';
import { ManagementService } from './service.js';
import { TestDirectory } from './test-directory.test-helper.js';

/** The admin API's token in the fixture. */
export const ADMIN_TOKEN = 'fixture-admin-token-0123456789';

/** A clock a test moves by hand. */
export class ManualClock implements Clock {
  t: number;
  constructor(t = Math.floor(Date.now() / 1000) * 1000) {
    this.t = t;
  }
  now(): number {
    return this.t;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return systemClock.sleep(Math.min(ms, 5), signal);
  }
}

export interface Fixture {
  store: MemoryServerStore;
  directory: TestDirectory;
  secrets: ServerSecrets;
  service: ManagementService;
  admin: AdminService;
  http: ManagementHttpServer;
  url: string;
  clock: ManualClock;
  dirs: string[];
  endpoint(
    name?: string,
    clock?: Clock,
  ): Promise<{ device: DeviceKeys; trustedTime: TrustedTime; client: ManagementClient; dir: string }>;
  close(): Promise<void>;
}

export async function startFixture(
  options: { tls?: { key: string; cert: string }; directory?: ServerDirectory; throttle?: boolean } = {},
): Promise<Fixture> {
  const clock = new ManualClock();
  const store = new MemoryServerStore();
  const directory = new TestDirectory();
  const secrets = ServerSecrets.generate({ clock });
  const service = new ManagementService({
    store,
    directory: options.directory ?? directory,
    secrets,
    clock,
    directoryCacheMs: 0,
    ...(options.throttle ? { throttle: new SignInThrottle(store, { clock }) } : {}),
  });
  const admin = new AdminService({ store, secrets, directory, clock });
  const http = createManagementServer({ service, tls: options.tls, admin: new AdminApi(admin, ADMIN_TOKEN) });
  const url = await http.listen(0, '127.0.0.1');
  const dirs: string[] = [];
  return {
    store,
    directory,
    secrets,
    service,
    admin,
    http,
    url,
    clock,
    dirs,
    async endpoint(name = 'pc', c: Clock = clock) {
      const dir = await mkdtemp(join(tmpdir(), `tandem-endpoint-${name}-`));
      dirs.push(dir);
      const { device, trustedTime } = await openEndpointKeys(join(dir, 'keys'), { clock: c });
      const client = new ManagementClient({ baseUrl: url, device, clock: c, retryDelayMs: 1, attempts: 4 });
      return { device, trustedTime, client, dir };
    },
    async close() {
      await http.close();
      await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
    },
  };
}

/** A signed POST by hand (to replay it, or to send what the client never would). */
export async function signedPost(
  url: string,
  path: string,
  device: DeviceKeys,
  body: Buffer,
  options: { time?: string; nonce?: string; deviceId?: string } = {},
): Promise<{
  status: number;
  json: { code?: string; reason?: string; message?: string } & Record<string, unknown>;
  headers: Record<string, string>;
}> {
  const time = options.time ?? new Date().toISOString();
  const nonce = options.nonce ?? newNonce();
  const id = options.deviceId ?? device.deviceId;
  const sig = await device.sign(signingInput({ method: 'POST', path, device: id, time, nonce, body }));
  const headers = {
    'content-type': 'application/json',
    [SIGNATURE_HEADERS.device]: id,
    [SIGNATURE_HEADERS.time]: time,
    [SIGNATURE_HEADERS.nonce]: nonce,
    [SIGNATURE_HEADERS.signature]: sig.toString('base64url'),
  };
  return rawPost(url, path, body, headers);
}

export function rawPost(
  url: string,
  path: string,
  body: Buffer,
  headers: Record<string, string>,
): Promise<{
  status: number;
  json: { code?: string; reason?: string; message?: string } & Record<string, unknown>;
  headers: Record<string, string>;
}> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        hostname: u.hostname,
        port: u.port,
        path,
        method: 'POST',
        headers: { ...headers, 'content-length': String(body.length) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            json: JSON.parse(text) as { code?: string; reason?: string; message?: string } & Record<string, unknown>,
            headers: res.headers as Record<string, string>,
          });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Ten events as an endpoint queues them. */
export function sampleEvents(prefix: string, count = 10, at = '2026-12-01T08:59:00.000Z') {
  return Array.from({ length: count }, (_, i) => ({
    id: `${prefix}-${String(i).padStart(4, '0')}-0000-4000-8000-000000000000`,
    type: 'session.transition' as const,
    at,
    workspace: 'quickstart',
    session: 's1',
    data: { from: 'stopped', to: 'running', operation: 'start', vm: 'tandem-quickstart' },
  }));
}
