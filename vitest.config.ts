import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Tests run against the TypeScript sources of sibling packages, not their dist/.
    conditions: ['@tandem/source'],
  },
  ssr: { resolve: { conditions: ['@tandem/source'] } },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'examples/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // .ci/run sets VITEST_JSON_REPORT to count passed and failed tests.
    reporters: process.env['VITEST_JSON_REPORT']
      ? ['default', ['json', { outputFile: process.env['VITEST_JSON_REPORT'] }]]
      : ['default'],
  },
});
