// The store suite's checks of records: devices, nonces, assignments, policy layers, keys, the
// built-in directory, throttles, audit, the schema and the change feed.
import assert from 'node:assert/strict';
import { TandemError } from '@tandem/core';
import { sampleDevice, until } from './conformance-kit.js';
import type { StoreSubject } from './conformance-kit.js';
import type { AssignmentRecord, BuiltinUserRecord, StoreChange } from './types.js';

type Check = (
  name: string,
  body: (s: StoreSubject) => Promise<void>,
  needs?: (s: StoreSubject) => string | null,
) => void;

const noReopen = (s: StoreSubject): string | null =>
  s.reopen ? null : 'the factory offers no reopen() (a second process)';

function assignment(id: string, overrides: Partial<AssignmentRecord> = {}): AssignmentRecord {
  return {
    id,
    workspace: 'legacy-erp',
    channel: 'stable',
    users: ['alice'],
    groups: ['cn=erp,ou=groups,dc=example,dc=org'],
    policyLayers: ['base', 'finance'],
    lease: 'P14D',
    createdAt: '2026-05-01T10:00:00.000Z',
    updatedAt: '2026-05-01T10:00:00.000Z',
    ...overrides,
  };
}

function user(name: string, overrides: Partial<BuiltinUserRecord> = {}): BuiltinUserRecord {
  return {
    name,
    displayName: `${name[0]!.toUpperCase()}${name.slice(1)} Example`,
    passwordHash: 'scrypt$16384$8$1$c2FsdA$aGFzaA',
    passwordChangedAt: '2026-05-01T10:00:00.000Z',
    passwordExpiresAt: null,
    disabled: false,
    expiresAt: null,
    lockedUntil: null,
    ...overrides,
  };
}

/** Registers the record and change-feed checks. */
export function registerRecordChecks(check: Check): void {
  check('migrate is idempotent, also from two processes at once', async (s) => {
    await s.store.migrate();
    if (s.reopen) {
      const other = await s.reopen();
      await Promise.all([s.store.migrate(), other.migrate(), s.store.migrate()]);
    }
    await s.store.putDevice(sampleDevice(1));
    assert.equal((await s.store.getDevice(sampleDevice(1).id))?.id, sampleDevice(1).id);
  });

  check('devices: put, get, list with filters and paging, check-in, revoke', async ({ store }) => {
    for (let n = 1; n <= 7; n++) await store.putDevice(sampleDevice(n));
    const d1 = sampleDevice(1);
    assert.deepEqual(await store.getDevice(d1.id), { ...d1, revokedAt: null, lastCheckInAt: null });
    assert.equal(await store.getDevice('tandem-device1:none'), undefined);
    const all = await store.listDevices();
    assert.equal(all.total, 7);
    assert.deepEqual(
      all.devices.map((d) => d.id),
      [1, 2, 3, 4, 5, 6, 7].map((n) => sampleDevice(n).id),
    );
    const page = await store.listDevices({ limit: 2, offset: 2 });
    assert.equal(page.total, 7);
    assert.deepEqual(
      page.devices.map((d) => d.id),
      [sampleDevice(3).id, sampleDevice(4).id],
    );
    assert.deepEqual(
      (await store.listDevices({ user: 'user1' })).devices.map((d) => d.id),
      [1, 4, 7].map((n) => sampleDevice(n).id),
    );
    assert.deepEqual(
      (await store.listDevices({ search: 'host-5.' })).devices.map((d) => d.id),
      [sampleDevice(5).id],
    );
    assert.equal((await store.listDevices({ search: '%' })).total, 0, 'search text is literal, not a pattern');
    const state = { workspaces: [{ workspace: 'legacy-erp', version: '1.0', state: 'running' }], agent: '0.1.0' };
    await store.recordCheckIn(d1.id, '2026-05-02T08:00:00Z', state);
    const seen = await store.getDevice(d1.id);
    assert.equal(seen?.lastCheckInAt, '2026-05-02T08:00:00.000Z');
    assert.deepEqual(seen?.lastState, state);
    await assert.rejects(store.recordCheckIn('tandem-device1:none', '2026-05-02T08:00:00Z', {}), (e) =>
      TandemError.is(e, 'TANDEM_NOT_FOUND'),
    );
    // Re-enrolling keeps what the last check-in said.
    await store.putDevice({ ...d1, hostName: 'renamed' });
    assert.deepEqual((await store.getDevice(d1.id))?.lastState, state);
    assert.equal((await store.getDevice(d1.id))?.hostName, 'renamed');
    assert.equal(await store.revokeDevice(d1.id, '2026-05-03T00:00:00Z'), true);
    assert.equal(await store.revokeDevice(d1.id, '2026-05-04T00:00:00Z'), true);
    assert.equal((await store.getDevice(d1.id))?.revokedAt, '2026-05-03T00:00:00.000Z', 'the first revocation stands');
    assert.equal(await store.revokeDevice('tandem-device1:none', '2026-05-03T00:00:00Z'), false);
    assert.deepEqual(
      (await store.listDevices({ revoked: true })).devices.map((d) => d.id),
      [d1.id],
    );
    assert.equal((await store.listDevices({ revoked: false })).total, 6);
  });

  check('grouped nonces and check-ins answer each item as if it were its own call', async ({ store }) => {
    const exp = '2099-01-01T00:00:00Z';
    if (store.useNonces) {
      assert.equal(await store.useNonce('dev-a', 'g-1', exp), true);
      assert.deepEqual(
        await store.useNonces([
          { device: 'dev-a', nonce: 'g-1', expiresAt: exp },
          { device: 'dev-a', nonce: 'g-2', expiresAt: exp },
          { device: 'dev-b', nonce: 'g-1', expiresAt: exp },
          { device: 'dev-a', nonce: 'g-2', expiresAt: exp },
        ]),
        [false, true, true, false],
      );
      assert.equal(await store.useNonce('dev-a', 'g-2', exp), false);
    }
    if (store.recordCheckIns) {
      const [d1, d2] = [sampleDevice(1), sampleDevice(2)];
      await store.putDevice(d1);
      await store.putDevice(d2);
      assert.deepEqual(
        await store.recordCheckIns([
          { id: d1.id, at: '2026-05-02T08:00:00Z', state: { n: 1 } },
          { id: 'tandem-device1:none', at: '2026-05-02T08:00:00Z', state: {} },
          { id: d2.id, at: '2026-05-02T08:00:01Z', state: { n: 2 } },
          { id: d1.id, at: '2026-05-02T08:00:02Z', state: { n: 3 } },
        ]),
        [true, false, true, true],
      );
      const got1 = await store.getDevice(d1.id);
      const got2 = await store.getDevice(d2.id);
      assert.deepEqual([got1?.lastState, got2?.lastState], [{ n: 3 }, { n: 2 }]);
      assert.equal(Date.parse(got1!.lastCheckInAt!), Date.parse('2026-05-02T08:00:02Z'));
    }
  });

  check('nonces: a nonce is accepted once per device, also under concurrent use', async (s) => {
    const other = s.reopen ? await s.reopen() : s.store;
    const exp = '2099-01-01T00:00:00Z';
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => (i % 2 ? other : s.store).useNonce('dev-a', 'n-1', exp)),
    );
    assert.equal(results.filter(Boolean).length, 1);
    assert.equal(await s.store.useNonce('dev-b', 'n-1', exp), true);
    assert.equal(await s.store.useNonce('dev-a', 'n-2', exp), true);
    assert.equal(await s.store.useNonce('dev-a', 'n-2', exp), false);
  });

  check(
    'assignments, policy layers and workspace keys round-trip; deletes say whether they found one',
    async ({ store }) => {
      const a1 = assignment('a1');
      const { channel: _channel, ...pinned } = assignment('a2');
      const a2: AssignmentRecord = {
        ...pinned,
        workspace: 'cad',
        version: '7.0.1',
        users: [],
        createdAt: '2026-05-02T00:00:00.000Z',
      };
      await store.putAssignment(a2);
      await store.putAssignment(a1);
      assert.deepEqual(await store.listAssignments(), [a1, a2]);
      const a1b = { ...a1, users: ['alice', 'bob'], updatedAt: '2026-05-05T00:00:00.000Z' };
      await store.putAssignment(a1b);
      assert.deepEqual(await store.listAssignments(), [a1b, a2]);
      assert.equal(await store.deleteAssignment('a2'), true);
      assert.equal(await store.deleteAssignment('a2'), false);
      assert.deepEqual(await store.listAssignments(), [a1b]);

      const layer = {
        name: 'base',
        document: { policy: { usage: { expires: '2027-01-01' } }, list: [1, 'two'] },
        updatedAt: '2026-05-01T00:00:00.000Z',
      };
      await store.putPolicyLayer(layer);
      await store.putPolicyLayer({ ...layer, name: 'a-first' });
      assert.deepEqual(await store.getPolicyLayer('base'), layer);
      assert.equal(await store.getPolicyLayer('none'), undefined);
      assert.deepEqual(
        (await store.listPolicyLayers()).map((l) => l.name),
        ['a-first', 'base'],
      );
      assert.equal(await store.deletePolicyLayer('a-first'), true);
      assert.equal(await store.deletePolicyLayer('a-first'), false);

      const key = { workspace: 'legacy-erp', sealedDataKey: 'sealed:abc', createdAt: '2026-05-01T00:00:00.000Z' };
      await store.putWorkspaceKey(key);
      assert.deepEqual(await store.getWorkspaceKey('legacy-erp'), key);
      await store.putWorkspaceKey({ ...key, sealedDataKey: 'sealed:rotated' });
      assert.equal((await store.getWorkspaceKey('legacy-erp'))?.sealedDataKey, 'sealed:rotated');
      assert.equal(await store.getWorkspaceKey('none'), undefined);
    },
  );

  check('built-in directory: users and groups round-trip, search and limit', async ({ store }) => {
    const alice = user('alice');
    const bob = user('bob', {
      disabled: true,
      lockedUntil: '2026-05-01T10:15:00.000Z',
      passwordExpiresAt: '2026-08-01T00:00:00.000Z',
    });
    await store.putUser(bob);
    await store.putUser(alice);
    await store.putUser(user('carol_x'));
    assert.deepEqual(await store.getUser('alice'), alice);
    assert.deepEqual(await store.getUser('bob'), bob);
    assert.equal(await store.getUser('nobody'), undefined);
    assert.deepEqual(
      (await store.listUsers()).map((u) => u.name),
      ['alice', 'bob', 'carol_x'],
    );
    assert.deepEqual(
      (await store.listUsers({ search: 'Bob Ex' })).map((u) => u.name),
      ['bob'],
    );
    assert.deepEqual(
      (await store.listUsers({ search: '_' })).map((u) => u.name),
      ['carol_x'],
    );
    assert.equal((await store.listUsers({ limit: 2 })).length, 2);
    await store.putUser({ ...alice, disabled: true });
    assert.equal((await store.getUser('alice'))?.disabled, true);
    assert.equal(await store.deleteUser('alice'), true);
    assert.equal(await store.deleteUser('alice'), false);

    const erp = { name: 'erp', description: 'ERP users', members: ['bob', 'group:finance'] };
    const finance = { name: 'finance', members: ['carol_x'] };
    await store.putGroup(erp);
    await store.putGroup(finance);
    assert.deepEqual(await store.getGroup('erp'), erp);
    assert.deepEqual(await store.getGroup('finance'), finance);
    assert.deepEqual(
      (await store.listGroups({ search: 'ERP u' })).map((g) => g.name),
      ['erp'],
    );
    assert.deepEqual(
      (await store.listGroups()).map((g) => g.name),
      ['erp', 'finance'],
    );
    assert.equal(await store.deleteGroup('erp'), true);
    assert.equal(await store.deleteGroup('erp'), false);
    assert.equal(await store.getGroup('erp'), undefined);
  });

  check('throttles: put, get, overwrite, clear', async ({ store }) => {
    const t = {
      key: 'account:alice',
      failures: 3,
      lastFailureAt: '2026-05-01T10:00:00.000Z',
      blockedUntil: '2026-05-01T10:00:08.000Z',
    };
    assert.equal(await store.getThrottle(t.key), undefined);
    await store.putThrottle(t);
    assert.deepEqual(await store.getThrottle(t.key), t);
    await store.putThrottle({ ...t, failures: 4 });
    assert.equal((await store.getThrottle(t.key))?.failures, 4);
    await store.clearThrottle(t.key);
    await store.clearThrottle(t.key);
    assert.equal(await store.getThrottle(t.key), undefined);
  });

  check('audit: append and query by actor, time and limit, oldest first', async ({ store }) => {
    const rec = (n: number, actor: string) => ({
      id: `audit-${n}`,
      at: new Date(Date.UTC(2026, 4, 1, 10, n)).toISOString(),
      actor,
      action: 'assignment.put',
      target: `a${n}`,
      ...(n % 2 ? { detail: { users: ['alice'], n } } : {}),
    });
    for (const n of [3, 1, 2, 4]) await store.appendAudit(rec(n, n % 2 ? 'admin' : 'ops'));
    assert.deepEqual(await store.queryAudit(), [rec(1, 'admin'), rec(2, 'ops'), rec(3, 'admin'), rec(4, 'ops')]);
    assert.deepEqual(
      (await store.queryAudit({ actor: 'admin' })).map((r) => r.id),
      ['audit-1', 'audit-3'],
    );
    assert.deepEqual(
      (await store.queryAudit({ since: rec(2, 'x').at, limit: 2 })).map((r) => r.id),
      ['audit-2', 'audit-3'],
    );
  });

  check('change feed: every change bumps the revision and reaches this process', async ({ store }) => {
    const seen: StoreChange[] = [];
    const stop = await store.onChange((c) => seen.push(c));
    const r0 = await store.revision();
    const c1 = await store.publishChange('channel', 'stable');
    assert.deepEqual(c1, { revision: r0 + 1, scope: 'channel', id: 'stable' });
    await store.putAssignment(assignment('a1'));
    await store.putPolicyLayer({ name: 'base', document: {}, updatedAt: '2026-05-01T00:00:00.000Z' });
    await store.putDevice(sampleDevice(1));
    await store.revokeDevice(sampleDevice(1).id, '2026-05-01T00:00:00.000Z');
    await store.putGroup({ name: 'erp', members: [] });
    assert.equal(await store.deleteAssignment('nothing'), false);
    const r1 = await store.revision();
    assert.equal(r1, r0 + 5, 'one bump per change that alters what endpoints get');
    await until(() => seen.length >= 5, 'five changes');
    assert.deepEqual(
      seen.map((c) => [c.scope, c.id]),
      [
        ['channel', 'stable'],
        ['assignment', 'a1'],
        ['policy', 'base'],
        ['device', sampleDevice(1).id],
        ['directory', 'group:erp'],
      ],
    );
    assert.deepEqual(
      seen.map((c) => c.revision),
      [r0 + 1, r0 + 2, r0 + 3, r0 + 4, r0 + 5],
    );
    stop();
    await store.publishChange('channel');
    await store.publishChange('channel');
    const after = await store.revision();
    // A straggler from before stop() may still arrive; nothing published after it does.
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(seen.every((c) => c.revision < after - 1));
  });

  check(
    'change feed: a second process sees each change made through the first, and the revision they share',
    async (s) => {
      const other = await s.reopen!();
      const seen: StoreChange[] = [];
      const stop = await other.onChange((c) => seen.push(c));
      const base = await other.revision();
      await s.store.putAssignment(assignment('a1'));
      const c = await s.store.publishChange('channel', 'pilot');
      await until(() => seen.length >= 2, 'two changes seen by the second process');
      assert.deepEqual(seen, [
        { revision: base + 1, scope: 'assignment', id: 'a1' },
        { revision: base + 2, scope: 'channel', id: 'pilot' },
      ]);
      assert.equal(c.revision, base + 2);
      assert.equal(await other.revision(), base + 2);
      assert.deepEqual(await other.listAssignments(), [assignment('a1')]);
      stop();
    },
    noReopen,
  );
}
