import { describe, expect, it } from 'vitest';
import { TandemError } from '@tandem/core';
import { defaultUri } from './options.js';
import { isSshTransport, parseLibvirtUri } from './uri.js';

describe('libvirt URIs', () => {
  it('tells local from remote and keeps the SSH parameters', () => {
    expect(parseLibvirtUri('qemu:///system')).toMatchObject({ driver: 'qemu', path: '/system', remote: false });
    expect(parseLibvirtUri('test:///default').remote).toBe(false);
    expect(parseLibvirtUri('qemu+unix:///system?socket=/tmp/s').remote).toBe(false);
    const u = parseLibvirtUri('qemu+ssh://root@127.0.0.1:2222/system?keyfile=/k%20ey&known_hosts=/kh');
    expect(u).toMatchObject({ transport: 'ssh', user: 'root', host: '127.0.0.1', port: 2222, remote: true });
    expect(u.params).toEqual({ keyfile: '/k ey', known_hosts: '/kh' });
    expect(isSshTransport(u)).toBe(true);
    expect(parseLibvirtUri('qemu+libssh://[::1]/system')).toMatchObject({ host: '::1', transport: 'libssh' });
  });

  it('keeps every query parameter as a parameter, the last of repeated ones, __proto__ included', () => {
    const u = parseLibvirtUri('qemu+ssh://h/system?__proto__=x&keyfile=/a&keyfile=/b');
    expect(Object.keys(u.params)).toEqual(['__proto__', 'keyfile']);
    expect(u.params['__proto__']).toBe('x');
    expect(u.params['keyfile']).toBe('/b');
  });

  it('rejects what is not a URI', () => {
    expect(() => parseLibvirtUri('system')).toThrow(TandemError);
  });

  it('defaults to $TANDEM_LIBVIRT_URI, else qemu:///system', () => {
    expect(defaultUri({})).toBe('qemu:///system');
    expect(defaultUri({ TANDEM_LIBVIRT_URI: 'qemu+ssh://h/system' })).toBe('qemu+ssh://h/system');
    expect(defaultUri({ TANDEM_LIBVIRT_URI: '  ' })).toBe('qemu:///system');
  });
});
