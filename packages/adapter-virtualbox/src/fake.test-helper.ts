/**
 * Test support: a VBOX_USER_HOME for the fake VBoxManage (test/fake/VBoxManage), and readers for
 * what the fake recorded. Not part of the package's API.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect } from 'vitest';

/** The fake VBoxManage executable. */
export const FAKE_VBOXMANAGE = fileURLToPath(new URL('../test/fake/VBoxManage', import.meta.url));

/** Recorded outputs of the real tools. */
export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

/** Reads a fixture file. */
export function fixture(name: string): string {
  return readFileSync(join(FIXTURES, name), 'utf8');
}

/** A fresh fake VirtualBox installation. */
export interface FakeVBoxHome {
  readonly home: string;
  /** Environment the adapter passes to VBoxManage. */
  env(extra?: Record<string, string>): Record<string, string>;
  /** Every argv the fake received, in order. */
  calls(): string[][];
  /** What the fake read on stdin, per call. */
  stdins(): { argv: string[]; stdin: string }[];
  /** Anything the fake refused: must stay empty. */
  unexpected(): unknown[];
  /** The fake's state file. */
  state(): {
    vms: { name: string; uuid: string; state: string; snapshots: unknown[]; extradata: Record<string, string> }[];
    launches?: unknown[];
    media: Record<string, unknown>;
  };
  remove(): void;
}

function jsonLines<T>(file: string): T[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);
}

export function fakeVBoxHome(version: '6.1' | '7.0' | '7.1' = '7.1'): FakeVBoxHome {
  const home = mkdtempSync(join(tmpdir(), 'tandem-fake-vbox-'));
  // The remote-host tests run the fake as the unprivileged SSH test account: it must write here.
  chmodSync(home, 0o777);
  return {
    home,
    env: (extra = {}) => ({ VBOX_USER_HOME: home, TANDEM_FAKE_VBOX_VERSION: version, ...extra }),
    calls: () => jsonLines<{ argv: string[] }>(join(home, 'argv.log')).map((l) => l.argv),
    stdins: () => jsonLines(join(home, 'stdin.log')),
    unexpected: () => jsonLines(join(home, 'unexpected.log')),
    state: () => {
      const file = join(home, 'fake-virtualbox.json');
      type State = ReturnType<FakeVBoxHome['state']>;
      return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as State) : { vms: [], media: {} };
    },
    remove: () => rmSync(home, { recursive: true, force: true }),
  };
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
