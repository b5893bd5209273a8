import { describe, expect, it } from 'vitest';
import { TandemError } from '../errors.js';
import { envOption, numberOption, sshOptionsFromStrings } from './ssh-target.js';

describe('adapter options from --adapter-option strings', () => {
  it('reads an SSH target with key, known_hosts, fingerprints and shell', () => {
    expect(
      sshOptionsFromStrings({
        ssh: 'ops@vbox01:2222',
        sshKey: '/k',
        sshKnownHosts: '/kh',
        sshFingerprint: 'SHA256:a,SHA256:b',
        sshShell: 'powershell',
      }),
    ).toEqual({
      username: 'ops',
      host: 'vbox01',
      port: 2222,
      privateKeyPath: '/k',
      knownHostsPath: '/kh',
      hostKeyFingerprints: ['SHA256:a', 'SHA256:b'],
      shell: 'powershell',
    });
    expect(sshOptionsFromStrings({ ssh: 'admin@[fe80::1]' })).toEqual({
      username: 'admin',
      host: 'fe80::1',
      agent: true,
    });
    expect(sshOptionsFromStrings({})).toBeUndefined();
  });

  it('refuses malformed values with InvalidInputError naming the option', () => {
    for (const bad of [{ ssh: 'no-user-here' }, { ssh: 'a@b', sshShell: 'fish' }]) {
      let err: unknown;
      try {
        sshOptionsFromStrings(bad);
      } catch (e) {
        err = e;
      }
      expect(TandemError.is(err, 'TANDEM_INVALID_INPUT')).toBe(true);
    }
    expect(() => numberOption({ timeoutMs: 'soon' }, 'timeoutMs')).toThrowError(/timeoutMs/);
  });

  it('reads numbers and env.NAME entries', () => {
    expect(numberOption({ timeoutMs: '5000' }, 'timeoutMs')).toBe(5000);
    expect(numberOption({}, 'timeoutMs')).toBeUndefined();
    expect(envOption({ 'env.VBOX_USER_HOME': '/srv/vbox', env: { A: 'b' } })).toEqual({
      A: 'b',
      VBOX_USER_HOME: '/srv/vbox',
    });
    expect(envOption({})).toBeUndefined();
  });
});
