import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LINK_FLAGS, writeShellLink } from './lnk.js';
import { readShellLink } from './lnk.test-helper.js';
import { hostileString } from './test-helpers.test-helper.js';

const erp = {
  target: 'C:\\Program Files\\Tandem\\tandem.exe',
  arguments: 'apps launch --workspace legacy-erp erp',
  description: 'Legacy ERP',
  iconLocation: 'C:\\Users\\ada\\AppData\\Local\\Tandem\\launchers\\tandem-legacy-erp-erp.ico',
  iconIndex: 0,
  time: new Date('2026-12-01T00:00:00Z'),
};

describe('MS-SHLLINK writer', () => {
  it('matches the golden file byte for byte', () => {
    // fixtures/legacy-erp.lnk was written by this writer and checked with lnkinfo (liblnk) once;
    // a change to the bytes must be deliberate.
    const golden = readFileSync(join(import.meta.dirname, 'fixtures', 'legacy-erp.lnk'));
    expect(Buffer.from(writeShellLink(erp)).equals(golden)).toBe(true);
  });

  it('an independent reader finds the target, arguments, description and icon', () => {
    const r = readShellLink(Buffer.from(writeShellLink(erp)));
    expect(r.localBasePath).toBe(erp.target);
    expect(r.localBasePathUnicode).toBe(erp.target);
    expect(r.arguments).toBe(erp.arguments);
    expect(r.name).toBe('Legacy ERP');
    expect(r.iconLocation).toBe(erp.iconLocation);
    expect(r.showCommand).toBe(1);
    expect(r.flags & LINK_FLAGS.HasLinkTargetIDList).toBe(0);
    expect(r.trailing).toBe(0);
  });

  it('hostile text round-trips exactly (Unicode StringData) and never corrupts the structure', () => {
    fc.assert(
      fc.property(hostileString(), hostileString(), (args, desc) => {
        fc.pre(!args.includes('\0') && !desc.includes('\0'));
        const r = readShellLink(
          Buffer.from(writeShellLink({ target: 'C:\\T\\tandem.exe', arguments: args, description: desc })),
        );
        expect(r.arguments).toBe(args);
        expect(r.name).toBe(desc);
        expect(r.trailing).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps non-ASCII targets in the Unicode copy', () => {
    const r = readShellLink(Buffer.from(writeShellLink({ target: 'C:\\Programme\\Tändem\\名前.exe' })));
    expect(r.localBasePathUnicode).toBe('C:\\Programme\\Tändem\\名前.exe');
    expect(r.localBasePath).toBe('C:\\Programme\\T?ndem\\??.exe');
  });

  it('refuses NUL and a relative target', () => {
    expect(() => writeShellLink({ target: 'C:\\a.exe', arguments: 'a\0b' })).toThrow(/NUL/);
    expect(() => writeShellLink({ target: 'tandem.exe' })).toThrow(/absolute local path/);
  });
});
