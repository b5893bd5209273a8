import { execFileSync } from 'node:child_process';
import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  entryMatches,
  hostKeyAlgorithms,
  keyFingerprint,
  keyTypeOf,
  knownHostName,
  parseKnownHosts,
  verifyHostKey,
} from './known-hosts.js';

/** An ed25519 public key blob in SSH wire format. */
function ed25519Blob(): Buffer {
  const { publicKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const str = (b: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    return Buffer.concat([len, b]);
  };
  return Buffer.concat([str(Buffer.from('ssh-ed25519')), str(raw)]);
}

const hashed = (name: string): string => {
  const salt = randomBytes(20);
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
};

describe('known_hosts', () => {
  const k1 = ed25519Blob();
  const k2 = ed25519Blob();
  const text = [
    '# comment',
    `[127.0.0.1]:2222 ssh-ed25519 ${k1.toString('base64')}`,
    `${hashed('hv01.corp.example')} ssh-ed25519 ${k1.toString('base64')} comment`,
    `*.lab.example,!bad.lab.example ssh-ed25519 ${k2.toString('base64')}`,
    `@revoked old.example ssh-ed25519 ${k2.toString('base64')}`,
    `@cert-authority *.example ssh-ed25519 ${k1.toString('base64')}`,
    'garbage line',
    '',
  ].join('\n');
  const entries = parseKnownHosts(text);

  it('parses key lines and skips the rest', () => {
    expect(entries).toHaveLength(5);
    expect(entries[0]?.line).toBe(2);
    expect(keyTypeOf(k1)).toBe('ssh-ed25519');
  });

  it('names hosts the way OpenSSH does', () => {
    expect(knownHostName('hv01', 22)).toBe('hv01');
    expect(knownHostName('127.0.0.1', 2222)).toBe('[127.0.0.1]:2222');
  });

  it('matches plain, hashed, wildcard and negated patterns', () => {
    expect(entryMatches(entries[0]!, '[127.0.0.1]:2222')).toBe(true);
    expect(entryMatches(entries[0]!, '127.0.0.1')).toBe(false);
    expect(entryMatches(entries[1]!, 'hv01.corp.example')).toBe(true);
    expect(entryMatches(entries[1]!, 'hv02.corp.example')).toBe(false);
    expect(entryMatches(entries[2]!, 'a.lab.example')).toBe(true);
    expect(entryMatches(entries[2]!, 'bad.lab.example')).toBe(false);
  });

  it('accepts only the recorded key; unknown hosts, other keys and revoked keys are refused', () => {
    expect(verifyHostKey(k1, '[127.0.0.1]:2222', entries)).toMatchObject({ ok: true, by: 'known_hosts' });
    expect(verifyHostKey(k2, '[127.0.0.1]:2222', entries)).toMatchObject({ ok: false, reason: 'mismatch' });
    expect(verifyHostKey(k1, 'elsewhere.example', entries)).toMatchObject({ ok: false, reason: 'unknown-host' });
    expect(verifyHostKey(k2, 'old.example', entries, [keyFingerprint(k2)])).toMatchObject({
      ok: false,
      reason: 'revoked',
    });
    // A @cert-authority line is not a host key.
    expect(verifyHostKey(k1, 'x.example', entries)).toMatchObject({ ok: false });
  });

  it('accepts a pinned fingerprint, with or without base64 padding', () => {
    const fp = keyFingerprint(k2);
    expect(verifyHostKey(k2, 'new.example', [], [fp])).toMatchObject({ ok: true, by: 'fingerprint' });
    expect(verifyHostKey(k2, 'new.example', [], [`${fp}=`])).toMatchObject({ ok: true });
    expect(verifyHostKey(k1, 'new.example', [], [fp])).toMatchObject({ ok: false });
  });

  it('offers the host key algorithms known for the host', () => {
    expect(hostKeyAlgorithms(entries, '[127.0.0.1]:2222')).toEqual(['ssh-ed25519']);
    const rsa = parseKnownHosts(`h ssh-rsa ${Buffer.from('x').toString('base64')}`);
    expect(hostKeyAlgorithms(rsa, 'h')).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
  });

  const pub = fileURLToPath(new URL('../../../../.ci/ssh/host_ed25519.pub', import.meta.url));
  it.skipIf(!existsSync(pub))('computes fingerprints exactly as ssh-keygen -lf prints them', () => {
    const blob = Buffer.from(readFileSync(pub, 'utf8').split(' ')[1]!, 'base64');
    const printed = execFileSync('ssh-keygen', ['-lf', pub], { encoding: 'utf8' }).split(' ')[1];
    expect(keyFingerprint(blob)).toBe(printed);
  });
});
