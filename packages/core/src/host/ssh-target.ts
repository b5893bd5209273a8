import { InvalidInputError } from '../errors.js';
import type { SshHostOptions } from './ssh-runner.js';

/**
 * SSH options from flat `key=value` strings, as `tandem --adapter-option` passes them:
 * `ssh=user@host[:port]`, `sshKey=<private key file>` (else the SSH agent), `sshKnownHosts=<file>`,
 * `sshFingerprint=SHA256:...[,SHA256:...]`, `sshShell=posix|powershell|cmd`. Returns undefined
 * when `ssh` is not given.
 *
 * @example
 * ```ts
 * sshOptionsFromStrings({ ssh: 'ops@vbox01:2222', sshKey: '/home/ops/.ssh/id_ed25519' });
 * // => { host: 'vbox01', port: 2222, username: 'ops', privateKeyPath: '/home/ops/.ssh/id_ed25519' }
 * ```
 */
export function sshOptionsFromStrings(o: Readonly<Record<string, unknown>>): SshHostOptions | undefined {
  const target = o['ssh'];
  if (target === undefined) return undefined;
  if (typeof target !== 'string') return target as SshHostOptions;
  const m = /^([^@\s]+)@(\[[^\]]+\]|[^:\s]+)(?::(\d+))?$/.exec(target);
  if (!m) {
    throw new InvalidInputError(`ssh="${target}" is not user@host or user@host:port.`, {
      details: { what: 'ssh', value: target },
    });
  }
  const shell = o['sshShell'];
  if (shell !== undefined && shell !== 'posix' && shell !== 'powershell' && shell !== 'cmd') {
    throw new InvalidInputError(`sshShell="${JSON.stringify(shell)}" is not posix, powershell or cmd.`, {
      details: { what: 'sshShell' },
    });
  }
  const str = (k: string): string | undefined => (typeof o[k] === 'string' ? o[k] : undefined);
  const key = str('sshKey');
  const knownHosts = str('sshKnownHosts');
  const fingerprints = str('sshFingerprint');
  return {
    username: m[1]!,
    host: m[2]!.replace(/^\[|\]$/g, ''),
    ...(m[3] ? { port: Number(m[3]) } : {}),
    ...(key ? { privateKeyPath: key } : { agent: true }),
    ...(knownHosts ? { knownHostsPath: knownHosts } : {}),
    ...(fingerprints ? { hostKeyFingerprints: fingerprints.split(',') } : {}),
    ...(shell ? { shell } : {}),
  };
}

/** A number option that may arrive as a string; undefined when absent. */
export function numberOption(o: Readonly<Record<string, unknown>>, key: string): number | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isFinite(n) || n < 0)
    throw new InvalidInputError(`${key}=${JSON.stringify(v)} is not a non-negative number.`, {
      details: { what: key },
    });
  return n;
}

/** Environment variables from `env.NAME=value` keys, merged over an `env` object if given. */
export function envOption(o: Readonly<Record<string, unknown>>): Record<string, string> | undefined {
  const env: Record<string, string> = { ...((o['env'] as Record<string, string> | undefined) ?? {}) };
  for (const [k, v] of Object.entries(o)) if (k.startsWith('env.') && typeof v === 'string') env[k.slice(4)] = v;
  return Object.keys(env).length ? env : undefined;
}
