/**
 * Test support: a VBOX_USER_HOME for the fake VBoxManage (test/fake/VBoxManage), and readers for
 * what the fake recorded. Not part of the package's API.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect } from 'vitest';
import { fakeVBoxHome, type FakeVBoxHome } from './testing/fake-vbox.js';

export { fakeVBoxHome, FAKE_VBOXMANAGE } from './testing/fake-vbox.js';
export type { FakeVBoxHome } from './testing/fake-vbox.js';

/** Recorded outputs of the real tools. */
export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

/** Reads a fixture file. */
export function fixture(name: string): string {
  return readFileSync(join(FIXTURES, name), 'utf8');
}

/**
 * Fake homes for one test file: after each test every home made is checked for calls the fake
 * refused and removed.
 */
export function fakeVBoxHomesPerTest(): (version?: '6.1' | '7.0' | '7.1') => FakeVBoxHome {
  let homes: FakeVBoxHome[] = [];
  afterEach(() => {
    const made = homes;
    homes = [];
    try {
      for (const h of made) expect(h.unexpected()).toEqual([]);
    } finally {
      for (const h of made) h.remove();
    }
  });
  return (version) => {
    const home = fakeVBoxHome(version);
    homes.push(home);
    return home;
  };
}
