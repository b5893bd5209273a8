// PostgreSQL for the store's integration tests: TANDEM_TEST_POSTGRES (set by .ci/run), a gate
// that skips (or fails under TANDEM_IT=required) without it, and a fresh schema per subject.
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { integrationGate } from '@tandem/core/testing';
import type { IntegrationGate } from '@tandem/core/testing';
import { PostgresStore } from './postgres-store.js';
import type { PostgresStoreOptions } from './postgres-store.js';

export const POSTGRES_URL = process.env['TANDEM_TEST_POSTGRES'] ?? '';

/** Is a PostgreSQL reachable at TANDEM_TEST_POSTGRES? */
export function postgresGate(): Promise<IntegrationGate> {
  return integrationGate(
    'PostgreSQL',
    async () => {
      if (!POSTGRES_URL) return 'TANDEM_TEST_POSTGRES is not set';
      const sql = postgres(POSTGRES_URL, { max: 1, connect_timeout: 10, onnotice: () => undefined });
      try {
        await sql`SELECT 1`;
        return null;
      } finally {
        await sql.end({ timeout: 5 });
      }
    },
    'run the "PostgreSQL 15" step of .ci/run (it starts the cluster and sets TANDEM_TEST_POSTGRES=postgres://tandem_test:tandem_test@127.0.0.1:5432/tandem_test)',
  );
}

/** A schema of its own for one test, and every store opened on it; `drop()` closes them and removes it. */
export class TestSchema {
  readonly name = `t_${randomBytes(6).toString('hex')}`;
  readonly stores: PostgresStore[] = [];

  async open(options: Partial<PostgresStoreOptions> = {}): Promise<PostgresStore> {
    const store = new PostgresStore({ url: POSTGRES_URL, schema: this.name, max: 4, ...options });
    this.stores.push(store);
    await store.migrate();
    return store;
  }

  /** A plain connection to the same database, for what the test does behind the store's back. */
  admin(): postgres.Sql {
    return postgres(POSTGRES_URL, { max: 2, onnotice: () => undefined, connection: { search_path: this.name } });
  }

  async drop(): Promise<void> {
    for (const s of this.stores) await s.close();
    const sql = this.admin();
    try {
      await sql.unsafe(`DROP SCHEMA IF EXISTS ${this.name} CASCADE`);
    } finally {
      await sql.end({ timeout: 5 });
    }
  }
}
