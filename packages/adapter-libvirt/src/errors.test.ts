import { describe, expect, it } from 'vitest';
import { TandemError } from '@tandem/core';
import { classifyLibvirtMessage, libvirtError } from './errors.js';

// Messages as libvirt 9.0 prints them.
const cases: [string, string][] = [
  ["Domain not found: no domain with matching name 'x'", 'no-domain'],
  ["failed to get domain 'x'", 'no-domain'],
  ["Domain snapshot not found: no domain snapshot with matching name 'snap'", 'no-snapshot'],
  ['Requested operation is not valid: domain is not running', 'invalid-state'],
  ['Requested operation is not valid: domain is already running', 'invalid-state'],
  ["Requested operation is not valid: network 'default' is not active", 'rejected'],
  ["operation failed: domain snapshot 'a' already exists", 'conflict'],
  ["Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory", 'connection'],
  ['Cannot recv data: Connection reset by peer', 'connection'],
  ['internal error: client socket is closed', 'connection'],
  ['authentication failed: access denied by policy', 'auth'],
  ["XML error: name x/y cannot contain '/'", 'rejected'],
  [
    "internal error: Failed to start network default: Unable to find 'dnsmasq' binary in $PATH: No such file or directory",
    'missing-program',
  ],
  ["Secret not found: no secret with matching usage '/img/a.qcow2'", 'rejected'],
];

describe('libvirt error mapping', () => {
  it.each(cases)('%s -> %s', (message, kind) => {
    expect(classifyLibvirtMessage(message)).toBe(kind);
  });

  it("keeps libvirt's own message on every mapped error and names the state", () => {
    const ctx = { operation: 'suspend', uri: 'qemu:///system', vm: 'v' };
    for (const [message] of cases) {
      const err = libvirtError(message, ctx, { currentState: 'stopped' });
      expect(TandemError.is(err)).toBe(true);
      expect(err.details['libvirtMessage']).toBe(message);
    }
    const state = libvirtError('Requested operation is not valid: domain is not running', ctx, {
      currentState: 'stopped',
    });
    expect(state.code).toBe('TANDEM_INVALID_STATE');
    expect(state.details['current']).toBe('stopped');
    expect(libvirtError('Cannot recv data: x', ctx).retryable).toBe(true);
  });

  it('names the missing host program and the Debian package that brings it', () => {
    // What libvirt 9.0 says when the NAT network starts on a host without dnsmasq.
    const message = "internal error: Unable to find 'dnsmasq' binary in $PATH: No such file or directory";
    const err = libvirtError(message, { operation: 'start network default', uri: 'qemu:///system' });
    expect(err.code).toBe('TANDEM_HOST');
    expect(err.fault).toBe('host');
    expect(err.message).toContain('"dnsmasq"');
    expect(err.message).toContain('dnsmasq-base');
    expect(err.details['program']).toBe('dnsmasq');
    expect(err.details['libvirtMessage']).toBe(message);
  });
});
