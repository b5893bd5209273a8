import { chmodSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createConnection } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { integrationGate, type IntegrationGate } from './integration.js';

/** The account `.ci/sshd.sh` creates for remote-host tests when `.ci/ssh/user` does not say. */
export const LOOPBACK_SSH_USER = 'tandem-ci';

/**
 * The OpenSSH server `.ci/sshd.sh` starts on loopback for remote-host tests, and its keys.
 * Tests log in as an unprivileged account with a plain shell (`username`, from `.ci/ssh/user`),
 * never as root, so nobody's shell start-up decides whether they pass.
 */
export interface LoopbackSshd {
  readonly gate: IntegrationGate;
  readonly host: '127.0.0.1';
  readonly port: 2222;
  /** The unprivileged account the tests log in as (`tandem-ci`). */
  readonly username: string;
  /** The directory with the keys (`.ci/ssh`, a link to one directory per machine). */
  readonly dir: string;
  readonly privateKeyPath: string;
  readonly knownHostsPath: string;
}

/**
 * Finds the loopback sshd for `*.integ.test.ts` files: `$TANDEM_SSH_DIR`, else `.ci/ssh` in the
 * nearest parent of the working directory that has one. Skips (or fails under
 * `TANDEM_IT=required`) when its keys are missing or nothing listens on 127.0.0.1:2222.
 */
export async function loopbackSshd(component = 'sshd'): Promise<LoopbackSshd> {
  const dir = process.env['TANDEM_SSH_DIR'] ?? findCiSshDir(process.cwd());
  const privateKeyPath = join(dir, 'client_ed25519');
  const knownHostsPath = join(dir, 'known_hosts');
  const gate = await integrationGate(
    component,
    () =>
      new Promise<string | null>((done) => {
        if (!existsSync(privateKeyPath) || !existsSync(knownHostsPath)) {
          done(`${privateKeyPath} or ${knownHostsPath} is missing`);
          return;
        }
        const socket = createConnection({ host: '127.0.0.1', port: 2222 });
        socket.once('connect', () => {
          socket.end();
          done(null);
        });
        socket.once('error', (err) => done(`nothing listens on 127.0.0.1:2222 (${err.message})`));
      }),
    'run bash .ci/sshd.sh (as root)',
  );
  const userFile = join(dir, 'user');
  const username = existsSync(userFile) ? readFileSync(userFile, 'utf8').trim() : LOOPBACK_SSH_USER;
  return { gate, host: '127.0.0.1', port: 2222, username, dir, privateKeyPath, knownHostsPath };
}

/**
 * A scratch directory that the remote account can write to as well as the test (mode 0777;
 * `mkdtemp` makes 0700). A canary file that an injected command would create must be creatable
 * by the remote account, or a test of "no injected command ran" would pass for the wrong reason.
 */
export function sharedScratchDir(prefix = 'tandem-ssh-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o777);
  return dir;
}

function findCiSshDir(from: string): string {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    const candidate = join(dir, '.ci', 'ssh');
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return join(resolve(from), '.ci', 'ssh');
  }
}
