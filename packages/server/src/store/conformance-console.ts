// The store suite's checks of the management console's methods (issue 16): the endpoint table
// (filters, sorts, paging), the overview's counts, console sessions and the live event feed.
import assert from 'node:assert/strict';
import { TandemError } from '@tandem/core';
import { sampleDevice, sampleEvent } from './conformance-kit.js';
import type { StoreSubject } from './conformance-kit.js';

type Check = (
  name: string,
  body: (s: StoreSubject) => Promise<void>,
  needs?: (s: StoreSubject) => string | null,
) => void;

/** Registers the console checks. */
export function registerConsoleChecks(check: Check): void {
  check('console: endpoint table filters, sorts and pages in the store', async ({ store }) => {
    for (let n = 1; n <= 9; n++) await store.putDevice(sampleDevice(n));
    const id = (n: number): string => sampleDevice(n).id;
    // 1..3 online (recent), 4..6 checked in long ago, 7..8 never, 9 revoked.
    for (const n of [1, 2, 3])
      await store.recordCheckIn(id(n), `2026-05-02T08:0${n}:00Z`, {
        workspaces: [{ workspace: 'legacy-erp', version: n === 3 ? '2.0.0' : '1.0.0', state: 'running' }],
      });
    for (const n of [4, 5, 6])
      await store.recordCheckIn(id(n), `2026-04-0${n}T08:00:00Z`, {
        workspaces: [{ workspace: n === 4 ? 'legacy-erp' : 'cad', version: '1.0.0', state: 'stopped' }],
      });
    await store.recordCheckIn(id(9), '2026-05-02T08:00:00Z', {});
    await store.revokeDevice(id(9), '2026-05-02T09:00:00Z');
    const onlineSince = '2026-05-02T00:00:00Z';
    const ids = async (q: Parameters<typeof store.searchEndpoints>[0]) => {
      const r = await store.searchEndpoints(q);
      return { total: r.total, ids: r.rows.map((x) => x.device) };
    };
    assert.deepEqual(await ids({ limit: 3 }), { total: 9, ids: [id(1), id(2), id(3)] });
    assert.deepEqual(await ids({ limit: 3, offset: 7 }), { total: 9, ids: [id(8), id(9)] });
    assert.deepEqual(await ids({ state: 'online', onlineSince }), { total: 3, ids: [id(1), id(2), id(3)] });
    assert.deepEqual(await ids({ state: 'offline', onlineSince }), { total: 3, ids: [id(4), id(5), id(6)] });
    assert.deepEqual(await ids({ state: 'never' }), { total: 2, ids: [id(7), id(8)] });
    assert.deepEqual(await ids({ state: 'revoked' }), { total: 1, ids: [id(9)] });
    assert.deepEqual(await ids({ workspace: 'legacy-erp' }), { total: 4, ids: [id(1), id(2), id(3), id(4)] });
    assert.deepEqual(await ids({ workspace: 'legacy-erp', version: '2.0.0' }), { total: 1, ids: [id(3)] });
    assert.deepEqual(await ids({ version: '1.0.0', state: 'offline', onlineSince }), {
      total: 3,
      ids: [id(4), id(5), id(6)],
    });
    assert.deepEqual(await ids({ search: 'HOST-5.' }), { total: 1, ids: [id(5)] }, 'search ignores case');
    assert.equal((await ids({ search: '%' })).total, 0, 'search text is literal');
    assert.deepEqual(await ids({ checkedInAfter: '2026-04-05T00:00:00Z', checkedInBefore: '2026-05-01T00:00:00Z' }), {
      total: 2,
      ids: [id(5), id(6)],
    });
    const newest = await ids({ sort: 'lastCheckInAt', order: 'desc', limit: 4 });
    assert.deepEqual(newest.ids, [id(3), id(2), id(1), id(9)]);
    const oldest = await ids({ sort: 'lastCheckInAt', order: 'asc', limit: 3 });
    assert.deepEqual(oldest.ids, [id(7), id(8), id(4)], 'never checked in sorts first, ascending');
    const hosts = await ids({ sort: 'hostName', order: 'desc', limit: 2 });
    assert.deepEqual(hosts.ids, [id(9), id(8)]);
    const row = (await store.searchEndpoints({ search: id(3) })).rows[0];
    assert.deepEqual(row, {
      device: id(3),
      user: sampleDevice(3).user,
      hostName: sampleDevice(3).hostName,
      enrolledAt: sampleDevice(3).enrolledAt,
      lastCheckInAt: '2026-05-02T08:03:00.000Z',
      revoked: false,
      workspaces: [{ workspace: 'legacy-erp', version: '2.0.0', state: 'running' }],
    });
    for (const bad of [{ limit: 0 }, { limit: 501 }, { offset: -1 }, { state: 'online' as const }]) {
      await assert.rejects(store.searchEndpoints(bad), (e) => TandemError.is(e, 'TANDEM_INVALID_INPUT'));
    }
    await assert.rejects(
      store.searchEndpoints({ sort: 'password' as never }),
      (e) => TandemError.is(e, 'TANDEM_INVALID_INPUT') && /sort "password"/.test((e as Error).message),
    );
    const o = await store.endpointOverview({ onlineSince, daySince: '2026-04-04T12:00:00Z' });
    assert.deepEqual(o, { total: 9, onlineNow: 3, lastDay: 5, revoked: 1, sessionsRunning: 3 });
  });

  check('console: sessions put, get, touch, delete and prune', async ({ store }) => {
    const s = {
      id: 'a'.repeat(64),
      user: 'alice',
      displayName: 'Alice Example',
      createdAt: '2026-05-02T08:00:00Z',
      lastSeenAt: '2026-05-02T08:00:00Z',
      expiresAt: '2026-05-02T20:00:00Z',
    };
    await store.putConsoleSession(s);
    await store.putConsoleSession({ ...s, id: 'b'.repeat(64), user: 'bob', displayName: undefined });
    assert.deepEqual(await store.getConsoleSession(s.id), {
      ...s,
      createdAt: '2026-05-02T08:00:00.000Z',
      lastSeenAt: '2026-05-02T08:00:00.000Z',
      expiresAt: '2026-05-02T20:00:00.000Z',
    });
    assert.equal((await store.getConsoleSession('b'.repeat(64)))?.displayName, undefined);
    assert.equal(await store.getConsoleSession('c'.repeat(64)), undefined);
    assert.equal(await store.touchConsoleSession(s.id, '2026-05-02T09:00:00Z'), true);
    assert.equal(await store.touchConsoleSession('c'.repeat(64), '2026-05-02T09:00:00Z'), false);
    assert.equal((await store.getConsoleSession(s.id))?.lastSeenAt, '2026-05-02T09:00:00.000Z');
    // bob idle since 08:00 goes; alice (seen 09:00) stays.
    assert.equal(await store.pruneConsoleSessions('2026-05-02T10:00:00Z', '2026-05-02T08:30:00Z'), 1);
    assert.equal(await store.getConsoleSession('b'.repeat(64)), undefined);
    assert.equal(await store.deleteConsoleSession(s.id), true);
    assert.equal(await store.deleteConsoleSession(s.id), false);
    assert.equal(await store.getConsoleSession(s.id), undefined);
  });

  check('console: events received after a cursor, by arrival', async ({ store }) => {
    const a = sampleEvent('2026-05-02T08:00:00.000Z', { id: 'e-a' });
    const b = { ...sampleEvent('2026-05-02T07:00:00.000Z', { id: 'e-b' }), receivedAt: '2026-05-02T08:00:05.000Z' };
    const c = { ...sampleEvent('2026-05-02T08:00:02.000Z', { id: 'e-c' }), receivedAt: '2026-05-02T08:00:05.000Z' };
    const old = { ...sampleEvent('2026-04-01T00:00:00.000Z', { id: 'e-old' }), receivedAt: '2026-05-02T08:00:06.000Z' };
    await store.ingestEvents([a, b, c, old]);
    const since = '2026-05-02T00:00:00Z';
    const all = await store.eventsReceivedAfter({ receivedAt: '2026-05-02T00:00:00.000Z', id: '' }, since, 10);
    assert.deepEqual(
      all.map((e) => e.event.id),
      ['e-a', 'e-b', 'e-c'],
      'by arrival then id, not by event time; older than atSince left out',
    );
    assert.deepEqual(all[1], b);
    const after = await store.eventsReceivedAfter({ receivedAt: b.receivedAt, id: 'e-b' }, since, 10);
    assert.deepEqual(
      after.map((e) => e.event.id),
      ['e-c'],
    );
    assert.equal((await store.eventsReceivedAfter({ receivedAt: a.receivedAt, id: 'e-a' }, since, 1)).length, 1);
    await assert.rejects(store.eventsReceivedAfter({ receivedAt: since, id: '' }, since, 0), (e) =>
      TandemError.is(e, 'TANDEM_INVALID_INPUT'),
    );
  });
}
