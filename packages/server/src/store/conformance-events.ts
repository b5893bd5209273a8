// The store suite's checks of events: idempotent ingestion, paging, filters, retention, reports.
import assert from 'node:assert/strict';
import { TandemError } from '@tandem/core';
import { byTimeThenId, sampleDevice, sampleEvent, sampleEvents } from './conformance-kit.js';
import type { StoreSubject } from './conformance-kit.js';
import type { EventFilter, ServerStore, StoredEvent } from './types.js';

type Check = (
  name: string,
  body: (s: StoreSubject) => Promise<void>,
  needs?: (s: StoreSubject) => string | null,
) => void;

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 4, 10, 12, 0, 0);

async function all(store: ServerStore, filter: EventFilter): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  let after: string | undefined;
  for (let pages = 0; pages < 10_000; pages++) {
    const page = await store.queryEvents({ ...filter, ...(after === undefined ? {} : { after }) });
    out.push(...page.events);
    if (page.next === undefined) return out;
    assert.ok(page.events.length > 0, 'a page with a next cursor holds events');
    after = page.next;
  }
  throw new Error('paging did not end');
}

const ids = (events: readonly StoredEvent[]): string[] => events.map((e) => e.event.id);

/** Registers the event checks. */
export function registerEventChecks(check: Check): void {
  check('ingestion stores each event once by id, and reads it back as sent', async ({ store }) => {
    const batch = sampleEvents(30, T0, 60_000);
    assert.deepEqual(await store.ingestEvents(batch), { inserted: 30, duplicates: 0 });
    assert.deepEqual(await store.ingestEvents([...batch.slice(0, 10), batch[0]!]), { inserted: 0, duplicates: 11 });
    const fresh = sampleEvent(new Date(T0).toISOString());
    assert.deepEqual(await store.ingestEvents([fresh, fresh, batch[1]!]), { inserted: 1, duplicates: 2 });
    assert.deepEqual(await store.ingestEvents([]), { inserted: 0, duplicates: 0 });
    const stored = await all(store, {});
    assert.equal(stored.length, 31);
    assert.deepEqual(stored, [...batch, fresh].sort(byTimeThenId));
  });

  check('grouped ingestion counts each group as its own call, and stores each event once', async ({ store }) => {
    if (!store.ingestEventGroups) return;
    const a = sampleEvents(5, T0, 60_000);
    const b = sampleEvents(4, T0 + DAY, 60_000);
    await store.ingestEvents([a[0]!]);
    const counts = await store.ingestEventGroups([a, [...b, b[0]!], [a[1]!, b[2]!], []]);
    assert.deepEqual(counts, [
      { inserted: 4, duplicates: 1 },
      { inserted: 4, duplicates: 1 },
      { inserted: 0, duplicates: 2 },
      { inserted: 0, duplicates: 0 },
    ]);
    const stored = await all(store, {});
    assert.deepEqual(stored, [...a, ...b].sort(byTimeThenId));
    const good = sampleEvent(new Date(T0 + 2 * DAY).toISOString());
    const bad = { ...good, event: { ...good.event, id: '' } } as StoredEvent;
    await assert.rejects(store.ingestEventGroups([[good], [bad]]), (e) => TandemError.is(e, 'TANDEM_INVALID_INPUT'));
    assert.equal((await all(store, {})).length, 9);
  });

  check('concurrent retries of one batch insert every event exactly once', async (s) => {
    const other = s.reopen ? await s.reopen() : s.store;
    const batch = sampleEvents(600, T0, DAY);
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => (i % 2 ? other : s.store).ingestEvents(i % 3 ? batch : [...batch].reverse())),
    );
    assert.equal(
      results.reduce((n, r) => n + r.inserted, 0),
      600,
    );
    for (const r of results) assert.equal(r.inserted + r.duplicates, 600);
    const stored = await all(s.store, { limit: 500 });
    assert.equal(stored.length, 600);
    assert.equal(new Set(ids(stored)).size, 600);
  });

  check(
    'a bad event or cursor is refused with InvalidInputError, and nothing of its batch is written',
    async ({ store }) => {
      const good = sampleEvent(new Date(T0).toISOString());
      const noId = { ...good, event: { ...good.event, id: '' } } as StoredEvent;
      const badTime = { ...good, event: { ...good.event, id: 'bad-time', at: 'not a time' } } as StoredEvent;
      for (const bad of [noId, badTime]) {
        await assert.rejects(store.ingestEvents([good, bad]), (e) => TandemError.is(e, 'TANDEM_INVALID_INPUT'));
      }
      assert.equal((await store.queryEvents({})).events.length, 0);
      await assert.rejects(store.queryEvents({ after: 'garbage' }), (e) => TandemError.is(e, 'TANDEM_INVALID_INPUT'));
      await assert.rejects(store.queryEvents({ limit: 0 }), (e) => TandemError.is(e, 'TANDEM_INVALID_INPUT'));
    },
  );

  check('pages with cursors cover every event once, oldest first, including shared timestamps', async ({ store }) => {
    const batch = sampleEvents(250, T0, 3 * DAY);
    await store.ingestEvents(batch);
    const expected = [...batch].sort(byTimeThenId);
    for (const limit of [1, 7, 40, 250, 1000]) {
      const got = await all(store, { limit });
      assert.deepEqual(ids(got), ids(expected), `pages of ${limit}`);
    }
    const first = await store.queryEvents({ limit: 250 });
    assert.equal(first.events.length, 250);
    assert.equal(first.next, undefined, 'no cursor when the page reaches the end');
    // A cursor stays valid while new events arrive: later events show up on later pages.
    const p1 = await store.queryEvents({ limit: 100 });
    const late = sampleEvent(new Date(T0 + 10 * DAY).toISOString());
    await store.ingestEvents([late]);
    const rest = await all(store, { limit: 100, after: p1.next! });
    assert.deepEqual(ids(rest), [...ids(expected.slice(100)), late.event.id]);
  });

  check('filters by device, user, workspace, type and time narrow together, with paging', async ({ store }) => {
    const batch = sampleEvents(300, T0, 2 * DAY);
    await store.ingestEvents(batch);
    const since = new Date(T0 + DAY / 2).toISOString();
    const until = new Date(T0 + (3 * DAY) / 2).toISOString();
    const cases: [EventFilter, (e: StoredEvent) => boolean][] = [
      [{ device: 'tandem-device1:dev0002' }, (e) => e.device === 'tandem-device1:dev0002'],
      [{ user: 'user1' }, (e) => e.user === 'user1'],
      [{ workspace: 'ws2' }, (e) => e.event.workspace === 'ws2'],
      [{ type: 'session.error' }, (e) => e.event.type === 'session.error'],
      [{ type: ['session.error', 'session.transition'] }, () => true],
      [{ type: [] }, () => true],
      [{ since }, (e) => e.event.at >= since],
      [{ until }, (e) => e.event.at < until],
      [
        { since, until, user: 'user0', type: ['session.transition'], workspace: 'ws1' },
        (e) =>
          e.event.at >= since &&
          e.event.at < until &&
          e.user === 'user0' &&
          e.event.type === 'session.transition' &&
          e.event.workspace === 'ws1',
      ],
      [{ device: 'nobody' }, () => false],
    ];
    for (const [filter, keep] of cases) {
      const expected = batch.filter(keep).sort(byTimeThenId);
      assert.deepEqual(ids(await all(store, { ...filter, limit: 17 })), ids(expected), JSON.stringify(filter));
    }
  });

  check('retention deletes exactly the events before the cut, across days and months', async ({ store }) => {
    const start = Date.UTC(2026, 0, 28);
    const batch = sampleEvents(400, start, 70 * DAY); // late January to early April
    await store.ingestEvents(batch);
    const cut = new Date(Date.UTC(2026, 2, 3, 15, 30)).toISOString(); // mid-day, mid-month
    const before = batch.filter((e) => e.event.at < cut).length;
    assert.ok(before > 0 && before < 400);
    assert.equal(await store.applyRetention(cut), before);
    const left = await all(store, {});
    assert.equal(left.length, 400 - before);
    assert.ok(left.every((e) => e.event.at >= cut));
    assert.equal(await store.applyRetention(cut), 0);
    // The days retention emptied take events again (an endpoint's late upload).
    const late = sampleEvent(new Date(start + DAY).toISOString());
    assert.deepEqual(await store.ingestEvents([late]), { inserted: 1, duplicates: 0 });
    assert.equal(await store.applyRetention(new Date(start + 100 * DAY).toISOString()), 400 - before + 1);
    assert.equal((await store.queryEvents({})).events.length, 0);
  });

  check('reports: endpoints with their workspaces, failures since a time, version distribution', async ({ store }) => {
    await store.putDevice(sampleDevice(1));
    await store.putDevice(sampleDevice(2));
    await store.putDevice(sampleDevice(3));
    await store.putDevice(sampleDevice(4));
    const at = new Date(T0).toISOString();
    await store.recordCheckIn(sampleDevice(1).id, at, {
      workspaces: [
        { workspace: 'legacy-erp', version: '1.2.0', state: 'running' },
        { name: 'cad', version: '7', state: 'stopped' },
      ],
    });
    await store.recordCheckIn(sampleDevice(2).id, at, { workspaces: [{ workspace: 'legacy-erp', version: '1.2.0' }] });
    await store.recordCheckIn(sampleDevice(3).id, at, { workspaces: [{ workspace: 'legacy-erp', version: '1.1.0' }] });
    await store.recordCheckIn(sampleDevice(4).id, at, { workspaces: [{ workspace: 'legacy-erp', version: '1.1.0' }] });
    await store.revokeDevice(sampleDevice(4).id, at);
    const report = await store.endpointReport();
    assert.equal(report.length, 4);
    assert.deepEqual(report[0], {
      device: sampleDevice(1).id,
      user: sampleDevice(1).user,
      hostName: sampleDevice(1).hostName,
      lastCheckInAt: at,
      revoked: false,
      workspaces: [
        { workspace: 'legacy-erp', version: '1.2.0', state: 'running' },
        { workspace: 'cad', version: '7', state: 'stopped' },
      ],
    });
    assert.equal(report[3]!.revoked, true);
    assert.deepEqual(
      (await store.endpointReport({ limit: 2, offset: 1 })).map((r) => r.device),
      [sampleDevice(2).id, sampleDevice(3).id],
    );
    assert.deepEqual(await store.versionDistribution(), [
      { workspace: 'cad', version: '7', devices: 1 },
      { workspace: 'legacy-erp', version: '1.2.0', devices: 2 },
      { workspace: 'legacy-erp', version: '1.1.0', devices: 1 },
    ]);
    const now = T0 + 10 * DAY;
    const recent = (h: number): string => new Date(now - h * 3_600_000).toISOString();
    await store.ingestEvents([
      sampleEvent(recent(30), { type: 'session.error' }), // older than a day
      sampleEvent(recent(2), { type: 'session.error' }),
      sampleEvent(recent(3), { type: 'session.error' }),
      sampleEvent(recent(4), { type: 'sync.failed' }),
      sampleEvent(recent(5), { type: 'guest.error' }),
      sampleEvent(recent(6), { type: 'delivery.failed' }),
      sampleEvent(recent(1), { type: 'session.transition' }),
      sampleEvent(recent(1), { type: 'auth.success' }),
    ]);
    assert.deepEqual(await store.failuresSince(new Date(now - DAY).toISOString()), [
      { type: 'session.error', count: 2 },
      { type: 'delivery.failed', count: 1 },
      { type: 'guest.error', count: 1 },
      { type: 'sync.failed', count: 1 },
    ]);
  });
}
