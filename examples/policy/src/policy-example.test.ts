import { describe, expect, it } from 'vitest';
import { runPolicyExample } from './policy-example.js';

describe('policy example', () => {
  it('decides, explains, and passes its own table of expected decisions', async () => {
    const lines: string[] = [];
    const { decisions, tests, events } = await runPolicyExample((l) => lines.push(l));
    const text = lines.join('\n');
    expect(tests.filter((t) => !t.passed).map((t) => `${t.name}: ${t.failures.join('; ')}`)).toEqual([]);
    expect(tests.length).toBeGreaterThanOrEqual(19);
    expect(text).toContain('Imported 3 sites from sites.xml; 1 could not be mapped:');
    expect(text).toMatch(/line 19: \*\.old\.contoso\.example: wildcards are not part/);
    expect(decisions.map((d) => d.outcome)).toEqual([
      'guest',
      'guest',
      'host',
      'allow',
      'deny',
      'allow',
      'allow',
      'deny',
    ]);
    expect(decisions[1]).toMatchObject({
      layer: 'user-policy',
      rule: { id: 'finance-portal', appliesTo: 'group CN=Finance,OU=Groups,DC=corp,DC=example' },
    });
    expect(decisions[4]).toMatchObject({ layer: 'machine-policy', rule: { id: 'no-usb' } });
    expect(decisions[5]).toMatchObject({
      kind: 'usage',
      offlineRemainingMs: 2 * 86_400_000,
      idleLockMs: 600_000,
      idleLockInMs: 300_000,
    });
    expect(text).toContain('Offline time left at 09:00: 2d');
    expect(text).toMatch(/Two days later, offline: deny/);
    expect(events).toBe(decisions.length);
    expect(text).toContain('19 of 19 cases decided as expected');
  });
});
