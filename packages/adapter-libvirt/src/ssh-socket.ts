import { createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { Client, type ConnectConfig } from 'ssh2';
import { AuthError, CancelledError, HostError } from '@tandem/core';
import type { LibvirtUri } from './uri.js';

/**
 * Opens a unix socket on the libvirt host over SSH (OpenSSH `direct-streamlocal`), with the
 * same user, port, key and known_hosts as the libvirt URI (`keyfile=`, `known_hosts=`; else
 * ~/.ssh). The host key must be in known_hosts: an unknown host is refused, never trusted.
 */
export async function openRemoteUnixSocket(uri: LibvirtUri, socketPath: string, signal?: AbortSignal): Promise<Duplex> {
  const host = uri.host ?? 'localhost';
  const port = uri.port ?? 22;
  const knownHostsFile = uri.params['known_hosts'] ?? join(homedir(), '.ssh', 'known_hosts');
  const knownHosts = await readFile(knownHostsFile, 'utf8').catch(() => '');
  const config: ConnectConfig = {
    host,
    port,
    username: uri.user ?? userInfo().username,
    readyTimeout: 15_000,
    hostVerifier: (key: Buffer) => knownHostAccepts(knownHosts, host, port, key),
  };
  const keyFile = uri.params['keyfile'];
  if (keyFile) config.privateKey = await readFile(keyFile);
  else if (process.env['SSH_AUTH_SOCK']) config.agent = process.env['SSH_AUTH_SOCK'];
  else {
    for (const name of ['id_ed25519', 'id_ecdsa', 'id_rsa']) {
      const key = await readFile(join(homedir(), '.ssh', name)).catch(() => undefined);
      if (key) {
        config.privateKey = key;
        break;
      }
    }
  }
  return new Promise((resolve, reject) => {
    const client = new Client();
    let settled = false;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      client.end();
      reject(err);
    };
    const onAbort = (): void => fail(new CancelledError('Opening the guest channel was cancelled.'));
    signal?.addEventListener('abort', onAbort, { once: true });
    client.once('error', (err: Error & { level?: string }) => {
      const details = { host, port, socket: socketPath, knownHosts: knownHostsFile };
      if (err.level === 'client-authentication') {
        fail(new AuthError(`SSH to ${host}:${port} refused the key: ${err.message}.`, { cause: err, details }));
      } else if (/verification failed/i.test(err.message)) {
        fail(
          new AuthError(
            `The SSH host key of ${host}:${port} is not in ${knownHostsFile}. Add it there (after checking its fingerprint) or pass known_hosts= in the URI.`,
            { cause: err, details },
          ),
        );
      } else
        fail(new HostError(`SSH to ${host}:${port} failed: ${err.message}.`, { cause: err, retryable: true, details }));
    });
    client.once('ready', () => {
      client.openssh_forwardOutStreamLocal(socketPath, (err, stream) => {
        signal?.removeEventListener('abort', onAbort);
        if (err) {
          fail(
            new HostError(
              `The libvirt host refused to open ${socketPath} over SSH: ${err.message}. The SSH user must be able to open the socket (root, or a member of the libvirt-qemu group on that host) and sshd must allow stream-local forwarding.`,
              {
                cause: err,
                details: { host, socket: socketPath },
              },
            ),
          );
          return;
        }
        settled = true;
        stream.once('close', () => client.end());
        resolve(stream);
      });
    });
    client.connect(config);
  });
}

/**
 * True when `known_hosts` text lists `key` for the host (plain or hashed entries, `[host]:port`
 * for ports other than 22). Revoked (`@revoked`) entries reject; `@cert-authority` ones are ignored.
 */
export function knownHostAccepts(knownHosts: string, host: string, port: number, key: Buffer): boolean {
  const wanted = key.toString('base64');
  const pattern = port === 22 ? host : `[${host}]:${port}`;
  let accepted = false;
  for (const raw of knownHosts.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let marker: string | undefined;
    if (fields[0]?.startsWith('@')) marker = fields.shift();
    const [hosts, , blob] = fields;
    if (!hosts || !blob || blob !== wanted) continue;
    if (!hosts.split(',').some((h) => hostMatches(h, pattern))) continue;
    if (marker === '@revoked') return false;
    if (marker === undefined) accepted = true;
  }
  return accepted;
}

function hostMatches(entry: string, pattern: string): boolean {
  if (entry.startsWith('|1|')) {
    const [, , salt, hash] = entry.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(pattern).digest('base64') === hash;
  }
  return entry === pattern;
}
