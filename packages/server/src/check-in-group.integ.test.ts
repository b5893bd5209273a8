// The one-round-trip check-in (issue 15) through two servers on one real PostgreSQL, each with
// its own store, pool and cache of device keys, as two server processes have: a request replayed
// to the other server is refused, and a device revoked through one is refused at its very next
// check-in through the other, although that server holds its key in its cache.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEndpointKeys } from '@tandem/core/crypto';
import { ManagementClient, ROUTES } from '@tandem/core/management';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleEvents, signedPost } from './api.test-helper.js';
import { initServerDirectory, openDeployment, type Deployment } from './deployment.js';
import { POSTGRES_URL, TestSchema, postgresGate } from './store/postgres-test-db.test-helper.js';

const gate = await postgresGate();

describe.skipIf(!gate.enabled)('check-ins in one store round trip, two servers on one PostgreSQL', () => {
  const schema = new TestSchema();
  let dir: string;
  let one: Deployment;
  let two: Deployment;
  let urlOne: string;
  let urlTwo: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tandem-check-in-group-'));
    await initServerDirectory(join(dir, 'server'), {
      database: POSTGRES_URL,
      databaseSchema: schema.name,
      tls: 'none',
    });
    one = await openDeployment(join(dir, 'server'));
    two = await openDeployment(join(dir, 'server'));
    expect(one.store.checkInGroup).toBeTypeOf('function');
    urlOne = (await one.serve({ host: '127.0.0.1', port: 0 })).url;
    urlTwo = (await two.serve({ host: '127.0.0.1', port: 0 })).url;
    await one.admin.addUser('setup', { name: 'ana', password: 'ana-secret-1' });
    await one.admin.addMembers('setup', 'erp-users', ['ana']);
    await one.admin.assign('setup', { workspace: 'quickstart', groups: ['erp-users'] });
  }, 120_000);
  afterAll(async () => {
    await one?.close();
    await two?.close();
    await schema.drop();
    await rm(dir, { recursive: true, force: true });
  }, 120_000);

  it(
    'refuses a replay on the other server, and a revocation holds at the next check-in',
    { timeout: 120_000 },
    async () => {
      const { device } = await openEndpointKeys(join(dir, 'endpoint', 'keys'));
      const viaOne = new ManagementClient({ baseUrl: urlOne, device });
      const viaTwo = new ManagementClient({ baseUrl: urlTwo, device });
      await viaOne.enroll({ user: 'ana', password: 'ana-secret-1', hostName: 'pc-1' });
      const first = await viaTwo.checkIn({ events: sampleEvents('aaaa0001') });
      expect(first).toMatchObject({ status: 'changed', events: { inserted: 10, duplicates: 0 } });
      const again = await viaOne.checkIn({ token: first.token, events: sampleEvents('aaaa0001') });
      expect(again).toMatchObject({ status: 'unchanged', events: { inserted: 0, duplicates: 10 } });
      expect((await one.store.getDevice(device.deviceId))?.lastCheckInAt).toBeTruthy();

      // One signed request, sent twice: to server two, then the same bytes to server one.
      for (const route of [ROUTES.checkIn, ROUTES.events]) {
        const body = Buffer.from(
          JSON.stringify({ events: sampleEvents(route === ROUTES.events ? 'bbbb0001' : 'cccc0001', 2) }),
        );
        const options = { time: new Date().toISOString(), nonce: `replay-${route.replace(/\W/g, '')}-0001` };
        expect(await signedPost(urlTwo, route, device, body, options)).toMatchObject({ status: 200 });
        expect(await signedPost(urlOne, route, device, body, options)).toMatchObject({
          status: 401,
          json: { code: 'TANDEM_AUTH', reason: 'replayed' },
        });
      }
      const stored = await one.store.queryEvents({ device: device.deviceId, limit: 100 });
      expect(stored.events.filter((e) => /^(bbbb|cccc)0001/.test(e.event.id))).toHaveLength(4);

      // Revoked through server one; server two has this device's key cached from the check-ins above.
      expect(await one.admin.revokeDevice('root', device.deviceId)).toBe(true);
      const refused = await viaTwo.checkIn({ token: first.token, events: sampleEvents('dddd0001') }).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(refused).toMatchObject({ code: 'TANDEM_AUTH', reason: 'revoked', status: 403 });
      const after = await one.store.queryEvents({ device: device.deviceId, limit: 100 });
      expect(after.events.some((e) => e.event.id.startsWith('dddd0001'))).toBe(false);
    },
  );
});
