import { describe, it } from 'vitest';
import { storeConformanceSuite } from './conformance.js';
import { postgresGate, TestSchema } from './postgres-test-db.test-helper.js';

const gate = await postgresGate();

describe.skipIf(!gate.enabled)('PostgresStore (real PostgreSQL)', () => {
  for (const mode of ['unnest', 'copy'] as const) {
    storeConformanceSuite(
      it,
      async () => {
        const schema = new TestSchema();
        const store = await schema.open({ ingestMode: mode });
        return { store, reopen: () => schema.open({ ingestMode: mode }), cleanup: () => schema.drop() };
      },
      { prefix: `conformance (${mode} ingestion)` },
    );
  }
});
