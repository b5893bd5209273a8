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
      expect(db.prepare('SELECT max(version) AS v FROM schema_version').get()).toEqual({ v: 1 });
      expect(db.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
      db.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
