import { execFile } from 'node:child_process';
import { chmod, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { HostError, InvalidInputError } from '@tandem/core';
import { ensurePrivateDir } from '@tandem/core/crypto';

const run = promisify(execFile);

/** File names of the server's TLS key and certificate inside its TLS directory. */
export const TLS_KEY_FILE = 'server.key';
export const TLS_CERT_FILE = 'server.crt';

/**
 * Makes a self-signed certificate for a small site with Debian's `openssl` command (node:crypto
 * cannot make X.509 certificates, and openssl is on every Debian system and maintained with
 * it): an ECDSA P-256 key (0600) and a certificate valid for `days` days with the host names
 * and addresses as subjectAltNames. Endpoints trust it with `tandem login --ca server.crt`.
 *
 * @example
 * ```ts
 * const { keyFile, certFile } = await makeSelfSignedCertificate('/var/lib/tandem-server/tls', ['tandem.corp.example', '127.0.0.1']);
 * ```
 */
export async function makeSelfSignedCertificate(
  dir: string,
  names: readonly string[],
  options: { days?: number; openssl?: string } = {},
): Promise<{ keyFile: string; certFile: string }> {
  if (names.length === 0) throw new InvalidInputError('A certificate needs at least one host name or address.');
  for (const n of names)
    if (!/^[A-Za-z0-9.:-]{1,253}$/.test(n))
      throw new InvalidInputError(`"${n}" is not a host name or an IP address.`, { details: { name: n } });
  await ensurePrivateDir(dir);
  const keyFile = join(dir, TLS_KEY_FILE);
  const certFile = join(dir, TLS_CERT_FILE);
  const san = names.map((n) => (/^[0-9.]+$/.test(n) || n.includes(':') ? `IP:${n}` : `DNS:${n}`)).join(',');
  const cn = names[0] ?? 'tandem-server';
  try {
    await run(options.openssl ?? 'openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      String(options.days ?? 825),
      '-subj',
      `/CN=${cn}`,
      '-addext',
      `subjectAltName=${san}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,digitalSignature,keyCertSign',
      '-addext',
      'extendedKeyUsage=serverAuth',
    ]);
    await chmod(keyFile, 0o600);
  } catch (cause) {
    throw new HostError(
      'openssl could not make the certificate; install it (apt-get install -y openssl) or give your own with --tls-key and --tls-cert.',
      { cause, details: { stderr: stderrOf(cause) } },
    );
  }
  return { keyFile, certFile };
}

/** Reads a PEM key and certificate. */
export async function readTlsFiles(keyFile: string, certFile: string): Promise<{ key: string; cert: string }> {
  const [key, cert] = await Promise.all([readFile(keyFile, 'utf8'), readFile(certFile, 'utf8')]);
  return { key, cert };
}

function stderrOf(err: unknown): string {
  const s = (err as { stderr?: unknown }).stderr;
  return typeof s === 'string' ? s : Buffer.isBuffer(s) ? s.toString('utf8') : '';
}
