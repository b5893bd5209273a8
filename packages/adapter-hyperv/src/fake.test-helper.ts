/**
 * Test support: a home for the fake PowerShell (test/fake/pwsh) and readers for what it
 * recorded. Not part of the package's API.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect } from 'vitest';
import { HYPERV_SCRIPTS } from './scripts.js';
import { fakeHyperVHome, type FakeHyperVHome } from './testing/fake-hyperv.js';

export { fakeHyperVHome, FAKE_PWSH } from './testing/fake-hyperv.js';
export type { FakeHyperVHome, FakePwshCall } from './testing/fake-hyperv.js';

/** Recorded outputs of PowerShell. */
export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

/** Reads a fixture file. */
export function fixture(name: string): string {
  return readFileSync(join(FIXTURES, name), 'utf8');
}

/**
 * Fake homes for one test file: after each test every home made is checked for calls the fake
 * refused and for scripts that are not the adapter's own, and removed.
 */
export function fakeHyperVHomesPerTest(): (flavor?: '5.1' | '7') => FakeHyperVHome {
  let homes: FakeHyperVHome[] = [];
  afterEach(() => {
    const made = homes;
    homes = [];
    try {
      for (const h of made) {
        expect(h.unexpected()).toEqual([]);
        for (const c of h.calls()) expect(Object.values(HYPERV_SCRIPTS)).toContain(c.script);
      }
    } finally {
      for (const h of made) h.remove();
    }
  });
  return (flavor) => {
    const home = fakeHyperVHome(flavor);
    homes.push(home);
    return home;
  };
}
