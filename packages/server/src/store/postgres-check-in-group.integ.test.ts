// PostgresStore.checkInGroup against a real PostgreSQL (issue 15's one-round-trip check-in):
// two stores on one schema stand for two server processes.
import type { AnyTandemEvent } from '@tandem/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckInWrite } from './check-in-group.js';
import type { PostgresStore } from './postgres-store.js';
import { TestSchema, postgresGate } from './postgres-test-db.test-helper.js';
import type { StoredEvent } from './types.js';

const gate = await postgresGate();
// Nonces past their expiry may be forgotten by any write: these stay.
const FUTURE = '2099-01-01T00:00:00.000Z';

function events(device: string, ids: readonly string[]): StoredEvent[] {
  return ids.map((id, i) => ({
    device,
    user: 'ignored',
    receivedAt: '2026-12-02T07:00:00.000Z',
    event: {
      id,
      type: 'session.transition',
      at: `2026-12-02T06:5${i}:00.000Z`,
      workspace: 'quickstart',
      session: null,
      data: { from: 'stopped', to: 'running', operation: 'start', vm: 'v' },
    } as unknown as AnyTandemEvent,
  }));
}

const device = (id: string, user: string, revokedAt: string | null = null) => ({
  id,
  sealingKey: `seal-${id}`,
  signingKey: `sign-${id}`,
  user,
  hostName: `pc-${id}`,
  enrolledAt: '2026-12-01T00:00:00.000Z',
  revokedAt,
});

describe.skipIf(!gate.enabled)('PostgresStore.checkInGroup (real PostgreSQL)', () => {
  const schema = new TestSchema();
  let a: PostgresStore;
  let b: PostgresStore;
  const d1 = 'd1'.padEnd(32, '1');
  const d2 = 'd2'.padEnd(32, '2');
  const d3 = 'd3'.padEnd(32, '3');
  const nobody = 'd4'.padEnd(32, '4');

  beforeAll(async () => {
    a = await schema.open();
    b = await schema.open();
    await a.putDevice(device(d1, 'ana'));
    await a.putDevice(device(d2, 'bo'));
    await a.putDevice(device(d3, 'cy', '2026-12-01T12:00:00.000Z'));
  }, 60_000);
  afterAll(() => schema.drop(), 60_000);

  it('writes each request once, refuses replays across stores, unknown and revoked devices', async () => {
    const revision = await a.publishChange('test');
    const items: CheckInWrite[] = [
      {
        device: d1,
        nonce: 'nonce-one-0000001',
        expiresAt: FUTURE,
        at: '2026-12-02T07:00:00.000Z',
        state: { agentVersion: '1', workspaces: [{ workspace: 'quickstart', version: '1.0.0' }] },
        events: events(d1, ['e1', 'e2', 'e2', 'shared']),
      },
      // An event upload (no check-in), one of whose ids the first request owns.
      { device: d2, nonce: 'nonce-two-0000001', expiresAt: FUTURE, events: events(d2, ['e3', 'shared']) },
      { device: nobody, nonce: 'nonce-404-0000001', expiresAt: FUTURE, events: events(nobody, ['x1']) },
      {
        device: d3,
        nonce: 'nonce-rev-0000001',
        expiresAt: FUTURE,
        at: '2026-12-02T07:00:00.000Z',
        events: events(d3, ['x2']),
      },
    ];
    expect(await a.checkInGroup(items)).toEqual([
      { status: 'ok', user: 'ana', inserted: 3, duplicates: 1, revision: revision.revision },
      { status: 'ok', user: 'bo', inserted: 1, duplicates: 1, revision: revision.revision },
      { status: 'unknown-device' },
      { status: 'revoked', revokedAt: '2026-12-01T12:00:00.000Z' },
    ]);
    const stored = await a.queryEvents({ limit: 100 });
    expect(stored.events.map((e) => [e.event.id, e.device, e.user]).sort()).toEqual([
      ['e1', d1, 'ana'],
      ['e2', d1, 'ana'],
      ['e3', d2, 'bo'],
      ['shared', d1, 'ana'],
    ]);
    const one = await a.getDevice(d1);
    expect(one).toMatchObject({ lastCheckInAt: '2026-12-02T07:00:00.000Z' });
    expect(one?.lastState).toEqual({ agentVersion: '1', workspaces: [{ workspace: 'quickstart', version: '1.0.0' }] });
    expect((await a.getDevice(d2))?.lastCheckInAt ?? null).toBeNull();
    expect((await a.getDevice(d3))?.lastCheckInAt ?? null).toBeNull();
    // The same nonce again, through the other store (another server process): refused, and
    // nothing of it written, not its new state nor its new event.
    const replay = await b.checkInGroup([
      { ...items[0]!, at: '2026-12-02T07:01:00.000Z', state: { replayed: true }, events: events(d1, ['e9']) },
    ]);
    expect(replay).toEqual([{ status: 'replayed' }]);
    expect((await a.getDevice(d1))?.lastState).toEqual(items[0]!.state);
    expect((await a.queryEvents({ limit: 100 })).events).toHaveLength(4);
    // A retry with a new nonce: every event a duplicate, the state written.
    expect(
      await b.checkInGroup([{ ...items[0]!, nonce: 'nonce-one-0000002', at: '2026-12-02T07:02:00.000Z' }]),
    ).toEqual([{ status: 'ok', user: 'ana', inserted: 0, duplicates: 4, revision: revision.revision }]);
    expect(await a.getDevice(d1)).toMatchObject({ lastCheckInAt: '2026-12-02T07:02:00.000Z' });
    // A revocation made through one store is seen by the other's next write.
    expect(await a.revokeDevice(d2, '2026-12-02T07:03:00.000Z')).toBe(true);
    expect(await b.checkInGroup([{ ...items[1]!, nonce: 'nonce-two-0000002' }])).toEqual([
      { status: 'revoked', revokedAt: '2026-12-02T07:03:00.000Z' },
    ]);
  });

  it('refuses one device twice in one call, naming the rule', async () => {
    const item: CheckInWrite = { device: d1, nonce: 'nonce-twice-00001', expiresAt: FUTURE, events: [] };
    await expect(a.checkInGroup([item, { ...item, nonce: 'nonce-twice-00002' }])).rejects.toThrow(
      /each device at most once/,
    );
  });
});
