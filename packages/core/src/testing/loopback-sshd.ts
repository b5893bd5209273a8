import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { integrationGate, type IntegrationGate } from './integration.js';

/** The OpenSSH server `.ci/sshd.sh` starts on loopback for remote-host tests, and its keys. */
export interface LoopbackSshd {
  readonly gate: IntegrationGate;
  readonly host: '127.0.0.1';
  readonly port: 2222;
  readonly username: 'root';
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
  return { gate, host: '127.0.0.1', port: 2222, username: 'root', dir, privateKeyPath, knownHostsPath };
}

function findCiSshDir(from: string): string {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    const candidate = join(dir, '.ci', 'ssh');
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return join(resolve(from), '.ci', 'ssh');
  }
}
