import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Tests run against the TypeScript sources of sibling packages, not their dist/.
    conditions: ['@tandem/source'],
  },
  ssr: { resolve: { conditions: ['@tandem/source'] } },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'examples/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    // Many tests drive real processes (fake VBoxManage and PowerShell, tandem, virsh, ssh,
    // QEMU): a call that takes 50 ms on a quiet machine takes ten times that while stress-ng
    // keeps both cores busy. The limits catch hangs, not slowness; no test asserts a timing.
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: 'forks',
    // .ci/run sets VITEST_JSON_REPORT to count passed and failed tests.
    reporters: process.env['VITEST_JSON_REPORT']
      ? ['default', ['json', { outputFile: process.env['VITEST_JSON_REPORT'] }]]
      : ['default'],
  },
});
