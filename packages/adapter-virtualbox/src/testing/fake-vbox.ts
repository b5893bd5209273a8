// The fake VBoxManage (test/fake/VBoxManage), which replays outputs recorded from VirtualBox
// 6.1, 7.0 and 7.1 and keeps its VMs in a VBOX_USER_HOME, with readers for what it recorded:
// for this adapter's tests and, through @tandem/adapter-virtualbox/testing, other packages'.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The fake VBoxManage executable (give it as the adapter's `vboxManage`). */
export const FAKE_VBOXMANAGE = fileURLToPath(new URL('../../test/fake/VBoxManage', import.meta.url));

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

/**
 * A fresh VBOX_USER_HOME for the fake VBoxManage of one VirtualBox version; `remove()` deletes it.
 *
 * @example
 * ```ts
 * const home = fakeVBoxHome('7.1');
 * const adapter = virtualbox({ vboxManage: FAKE_VBOXMANAGE, env: home.env() });
 * ```
 */
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
