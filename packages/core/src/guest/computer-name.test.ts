import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NETBIOS_MAX, checkComputerNameTemplate, renderComputerName } from './computer-name.js';

describe('computer-name templates', () => {
  it('renders the placeholders', () => {
    expect(renderComputerName('ERP-{random4}', { random: () => 'K7Q2' }, 'windows')).toBe('ERP-K7Q2');
    expect(renderComputerName('{hostName}-vm', { hostName: 'laptop42.corp.example' }, 'linux')).toBe('laptop42-vm');
    expect(
      renderComputerName('{userName}-{random6}', { userName: 'alice', random: (n) => 'X'.repeat(n) }, 'linux'),
    ).toBe('alice-XXXXXX');
  });

  it('on Windows, a template that always exceeds 15 characters is an error at validate time', () => {
    const check = checkComputerNameTemplate('FINANCE-ERP-{random4}', 'windows');
    expect(check.errors.join()).toMatch(/at most 15 characters; FINANCE-ERP-\{random4\} always gives at least 16/);
    expect(checkComputerNameTemplate('FINANCE-ERP-{random4}', 'linux').errors).toEqual([]);
  });

  it('on Windows, a template whose length depends on the host is a warning, and the name is never shortened', () => {
    const check = checkComputerNameTemplate('ERP-{hostName}', 'windows');
    expect(check.errors).toEqual([]);
    expect(check.warnings.join()).toMatch(/the host's short name.*never shortened/);
    expect(() => renderComputerName('ERP-{hostName}', { hostName: 'accounting-laptop-7' }, 'windows')).toThrow(
      /has 23 characters; Windows \(NetBIOS\) allows at most 15\. Tandem does not shorten it/,
    );
  });

  it('refuses unknown placeholders and characters a computer name cannot hold', () => {
    expect(checkComputerNameTemplate('erp-{serialNumber}', 'linux').errors.join()).toMatch(
      /unknown placeholder \{serialNumber\}/,
    );
    expect(checkComputerNameTemplate('erp_01', 'linux').errors.join()).toMatch(/letters, digits and dashes/);
    expect(() => renderComputerName('{userName}', { userName: 'o.brien' }, 'linux')).toThrow(/is not valid/);
    expect(() => renderComputerName('{userName}-x', {}, 'linux')).toThrow(/uses \{userName\}, which is not known here/);
  });

  it('property: a rendered name is either valid and within the limit, or an error; never cut', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...'abcXYZ019-.'.split('')), maxLength: 40 }),
        fc.constantFrom('windows' as const, 'linux' as const),
        fc.constantFrom('{hostName}', 'ERP-{hostName}', '{hostName}-{random4}', 'W{random6}'),
        (hostName, os, template) => {
          let name: string | undefined;
          try {
            name = renderComputerName(template, { hostName, random: (n) => 'R'.repeat(n) }, os);
          } catch {
            return;
          }
          expect(name.length).toBeLessThanOrEqual(os === 'windows' ? NETBIOS_MAX : 63);
          expect(name).toMatch(/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$/);
          const short = hostName.split('.')[0]!;
          if (template.includes('{hostName}')) expect(name).toContain(short);
        },
      ),
    );
  });
});
