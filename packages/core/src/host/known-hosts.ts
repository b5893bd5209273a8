import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** One key line of an OpenSSH known_hosts file. */
export interface KnownHostEntry {
  /** `@cert-authority` lines are kept but never match a plain host key; `@revoked` rejects. */
  readonly marker?: 'cert-authority' | 'revoked';
  /** The host patterns, comma-separated in the file (`host`, `[host]:port`, `*.example`, `!bad`, `|1|salt|hash`). */
  readonly patterns: readonly string[];
  readonly keyType: string;
  /** The key blob, decoded from base64. */
  readonly key: Buffer;
  /** 1-based line number, for messages. */
  readonly line: number;
}

/** Parses known_hosts text; lines that are not key lines (comments, garbage) are skipped. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0]?.startsWith('@')) {
      const m = fields.shift();
      if (m === '@cert-authority') marker = 'cert-authority';
      else if (m === '@revoked') marker = 'revoked';
      else return;
    }
    const [hosts, keyType, key] = fields;
    if (!hosts || !keyType || !key || !/^[A-Za-z0-9+/]+=*$/.test(key)) return;
    entries.push({
      ...(marker ? { marker } : {}),
      patterns: hosts.split(','),
      keyType,
      key: Buffer.from(key, 'base64'),
      line: i + 1,
    });
  });
  return entries;
}

/** The name known_hosts uses for a host: `host` on port 22, `[host]:port` otherwise. */
export function knownHostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function wildcard(pattern: string, name: string): boolean {
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    'i',
  );
  return re.test(name);
}

function hashedMatch(pattern: string, name: string): boolean {
  const parts = pattern.split('|');
  if (parts.length !== 4 || parts[1] !== '1' || !parts[2] || !parts[3]) return false;
  const salt = Buffer.from(parts[2], 'base64');
  const want = Buffer.from(parts[3], 'base64');
  const got = createHmac('sha1', salt).update(name).digest();
  return want.length === got.length && timingSafeEqual(want, got);
}

/** True when the entry's patterns match the host name (negations `!pattern` win). */
export function entryMatches(entry: KnownHostEntry, name: string): boolean {
  let matched = false;
  for (const p of entry.patterns) {
    const negated = p.startsWith('!');
    const pattern = negated ? p.slice(1) : p;
    const hit = pattern.startsWith('|1|') ? hashedMatch(pattern, name) : wildcard(pattern, name);
    if (hit && negated) return false;
    if (hit) matched = true;
  }
  return matched;
}

/** `SHA256:<base64 without padding>`, as `ssh-keygen -lf` prints it. */
export function keyFingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside an SSH public key blob (its first string field). */
export function keyTypeOf(key: Buffer): string {
  if (key.length < 4) return '';
  const len = key.readUInt32BE(0);
  return key.subarray(4, 4 + len).toString('latin1');
}

/** The verdict on a server's host key. */
export type HostKeyVerdict =
  | { readonly ok: true; readonly fingerprint: string; readonly by: 'known_hosts' | 'fingerprint' }
  | { readonly ok: false; readonly fingerprint: string; readonly reason: 'unknown-host' | 'mismatch' | 'revoked' };

/**
 * Checks a host key against known_hosts entries and pinned fingerprints. The key is accepted only
 * when an entry for the host holds exactly this key, or its fingerprint is pinned; a revoked key
 * is refused even when pinned.
 */
export function verifyHostKey(
  key: Buffer,
  name: string,
  entries: readonly KnownHostEntry[],
  pinned: readonly string[] = [],
): HostKeyVerdict {
  const fingerprint = keyFingerprint(key);
  const forHost = entries.filter((e) => entryMatches(e, name));
  if (forHost.some((e) => e.marker === 'revoked' && e.key.equals(key)))
    return { ok: false, fingerprint, reason: 'revoked' };
  if (pinned.some((p) => p.replace(/=+$/, '') === fingerprint)) return { ok: true, fingerprint, by: 'fingerprint' };
  const plain = forHost.filter((e) => e.marker === undefined);
  if (plain.some((e) => e.key.equals(key))) return { ok: true, fingerprint, by: 'known_hosts' };
  return { ok: false, fingerprint, reason: plain.length > 0 ? 'mismatch' : 'unknown-host' };
}

/** Host key algorithms to offer for the key types known for a host (OpenSSH does the same). */
export function hostKeyAlgorithms(entries: readonly KnownHostEntry[], name: string): string[] {
  const types = new Set(entries.filter((e) => e.marker === undefined && entryMatches(e, name)).map((e) => e.keyType));
  const out: string[] = [];
  for (const t of types) {
    if (t === 'ssh-rsa') out.push('rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa');
    else out.push(t);
  }
  return out;
}
