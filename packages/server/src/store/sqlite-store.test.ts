import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { storeConformanceSuite } from './conformance.js';
import { SqliteStore } from './sqlite-store.js';
import type { ServerStore } from './types.js';

describe('SqliteStore', () => {
  storeConformanceSuite(it, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tandem-store-'));
    const path = join(dir, 'db', 'store.sqlite');
    const opened: ServerStore[] = [];
    const open = async (): Promise<ServerStore> => {
      const s = new SqliteStore({ path, pollMs: 20 });
      opened.push(s);
      await s.migrate();
      return s;
    };
    const store = await open();
    return {
      store,
      reopen: open,
      cleanup: async () => {
        for (const s of opened) await s.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  });

  it('keeps its file 0600 in a 0700 directory, with a schema version', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tandem-store-'));
    try {
      const path = join(dir, 'server', 'store.sqlite');
      const store = new SqliteStore({ path });
      await store.migrate();
      await store.publishChange('channel');
      expect((await stat(join(dir, 'server'))).mode & 0o777).toBe(0o700);
      for (const f of ['store.sqlite', 'store.sqlite-wal', 'store.sqlite-shm']) {
        expect((await stat(join(dir, 'server', f))).mode & 0o777, f).toBe(0o600);
      }
      await store.close();
      const { DatabaseSync } = await import('node:sqlite');
      const db = new DatabaseSync(path);
      expect(db.prepare('SELECT max(version) AS v FROM schema_version').get()).toEqual({ v: 2 });
      expect(db.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
      db.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('group commit: the writes of one turn share a transaction, and one failing write undoes only itself', async () => {
    const store = new SqliteStore({ path: ':memory:' });
    await store.migrate();
    const device = {
      id: 'tandem-device1:group',
      sealingKey: 'x25519:1',
      signingKey: 'ed25519:1',
      user: 'ana',
      hostName: 'pc',
      enrolledAt: '2026-05-01T00:00:00.000Z',
      revokedAt: null,
    };
    const [put, fresh, replay, missing, after] = await Promise.allSettled([
      store.putDevice(device),
      store.useNonce(device.id, 'n-1', '2099-01-01T00:00:00Z'),
      store.useNonce(device.id, 'n-1', '2099-01-01T00:00:00Z'),
      store.recordCheckIn('tandem-device1:none', '2026-05-02T00:00:00Z', {}),
      store.recordCheckIn(device.id, '2026-05-02T00:00:00Z', { ok: true }),
    ]);
    expect([put.status, fresh, replay, after.status]).toEqual([
      'fulfilled',
      { status: 'fulfilled', value: true },
      { status: 'fulfilled', value: false },
      'fulfilled',
    ]);
    expect(missing).toMatchObject({ status: 'rejected', reason: { code: 'TANDEM_NOT_FOUND' } });
    expect((await store.getDevice(device.id))?.lastState).toEqual({ ok: true });
    // A write asked for just before close() is still made.
    const last = store.useNonce(device.id, 'n-2', '2099-01-01T00:00:00Z');
    await store.close();
    expect(await last).toBe(true);
  });
});
