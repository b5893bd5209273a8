import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { knownHostAccepts } from './ssh-socket.js';

describe('known_hosts checks', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-kh-'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'other')]);
  const pub = readFileSync(join(dir, 'host.pub'), 'utf8').split(' ');
  const key = Buffer.from(pub[1] ?? '', 'base64');
  const otherKey = Buffer.from(readFileSync(join(dir, 'other.pub'), 'utf8').split(' ')[1] ?? '', 'base64');

  it('accepts a listed key for [host]:port and refuses other hosts, ports and keys', () => {
    const kh = `# comment\n[127.0.0.1]:2222 ${pub[0]} ${pub[1]}\n`;
    expect(knownHostAccepts(kh, '127.0.0.1', 2222, key)).toBe(true);
    expect(knownHostAccepts(kh, '127.0.0.1', 22, key)).toBe(false);
    expect(knownHostAccepts(kh, '10.0.0.1', 2222, key)).toBe(false);
    expect(knownHostAccepts(kh, '127.0.0.1', 2222, otherKey)).toBe(false);
    expect(knownHostAccepts('', '127.0.0.1', 2222, key)).toBe(false);
  });

  it('understands entries hashed by ssh-keygen -H, and @revoked', () => {
    const file = join(dir, 'known_hosts');
    writeFileSync(file, `[127.0.0.1]:2222 ${pub[0]} ${pub[1]}\nhost.example,10.1.1.1 ${pub[0]} ${pub[1]}\n`);
    execFileSync('ssh-keygen', ['-q', '-H', '-f', file]);
    const hashed = readFileSync(file, 'utf8');
    expect(hashed).toContain('|1|');
    expect(hashed).not.toContain('127.0.0.1');
    expect(knownHostAccepts(hashed, '127.0.0.1', 2222, key)).toBe(true);
    expect(knownHostAccepts(hashed, '10.1.1.1', 22, key)).toBe(true);
    expect(knownHostAccepts(hashed, '10.1.1.2', 22, key)).toBe(false);
    expect(knownHostAccepts(`${hashed}@revoked [127.0.0.1]:2222 ${pub[0]} ${pub[1]}\n`, '127.0.0.1', 2222, key)).toBe(
      false,
    );
  });
});
