/**
 * Test support: a home for the fake PowerShell (test/fake/pwsh) and readers for what it
 * recorded. Not part of the package's API.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect } from 'vitest';
import { HYPERV_SCRIPTS } from './scripts.js';

/** The fake pwsh executable. */
export const FAKE_PWSH = fileURLToPath(new URL('../test/fake/pwsh', import.meta.url));

/** Recorded outputs of PowerShell. */
export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

/** Reads a fixture file. */
export function fixture(name: string): string {
  return readFileSync(join(FIXTURES, name), 'utf8');
}

/** One call the fake received. */
export interface FakePwshCall {
  op: string;
  script: string;
  stdin: string;
}

/** A fresh fake Hyper-V host. */
export interface FakeHyperVHome {
  readonly home: string;
  env(extra?: Record<string, string>): Record<string, string>;
  calls(): FakePwshCall[];
  /** The values each call of `op` received on stdin, decoded as the scripts' prelude decodes them. */
  inputs(op: string): Record<string, string>[];
  unexpected(): unknown[];
  state(): {
    vms: {
      Name: string;
      Id: string;
      State: number;
      ProcessorCount: number;
      /** The files the VM's drives point at now (an .avhdx while it has checkpoints). */
      Disks: string[];
      Snapshots: unknown[];
      Notes: string;
      Switch: string | null;
    }[];
    removedFiles: string[];
    /** Differencing disks on the host, with their parents. */
    files?: Record<string, { parent: string }>;
    /** Differencing disks Hyper-V merged into their parents. */
    mergedFiles?: string[];
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

/** One `name=<base64 value>` line of a script's stdin. */
function decodeInputLine(line: string): [string, string] {
  const eq = line.indexOf('=');
  return [line.slice(0, eq), Buffer.from(line.slice(eq + 1), 'base64').toString('utf8')];
}

export function fakeHyperVHome(flavor: '5.1' | '7' = '7'): FakeHyperVHome {
  const home = mkdtempSync(join(tmpdir(), 'tandem-fake-hyperv-'));
  // The remote-host tests run the fake as the unprivileged SSH test account: it must write here.
  chmodSync(home, 0o777);
  return {
    home,
    env: (extra = {}) => ({ TANDEM_FAKE_HYPERV_HOME: home, TANDEM_FAKE_PWSH_FLAVOR: flavor, ...extra }),
    calls: () => jsonLines<FakePwshCall>(join(home, 'calls.log')),
    inputs: (op) =>
      jsonLines<FakePwshCall>(join(home, 'calls.log'))
        .filter((c) => c.op === op)
        .map((c) => Object.fromEntries(c.stdin.split('\n').filter(Boolean).map(decodeInputLine))),
    unexpected: () => jsonLines(join(home, 'unexpected.log')),
    state: () => {
      const file = join(home, 'fake-hyperv.json');
      type State = ReturnType<FakeHyperVHome['state']>;
      return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as State) : { vms: [], removedFiles: [] };
    },
    remove: () => rmSync(home, { recursive: true, force: true }),
  };
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
