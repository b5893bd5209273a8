// The fake PowerShell with a fake Hyper-V module (test/fake/pwsh), which keeps its VMs in a home
// directory, with readers for what it recorded: for this adapter's tests and, through
// @tandem/adapter-hyperv/testing, other packages'.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The fake pwsh executable (give it as the adapter's `powershell`). */
export const FAKE_PWSH = fileURLToPath(new URL('../../test/fake/pwsh', import.meta.url));

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

/**
 * A fresh home for the fake PowerShell (Windows PowerShell 5.1 or PowerShell 7); `remove()` deletes it.
 *
 * @example
 * ```ts
 * const home = fakeHyperVHome('7');
 * const adapter = hyperv({ powershell: FAKE_PWSH, env: home.env() });
 * ```
 */
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
