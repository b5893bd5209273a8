import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { cliHarness } from '../cli-harness.test-helper.js';

// `tandem guest` against a real agent is in packages/guest-agent/src/cli.test.ts; here: what
// validate says about first-time setup, and a mock VM without an agent.
let dir: string;
const tandem = cliHarness(() => join(dir, 'state'));
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-guest-'));
});

const workspace = (guestOs: string, computerName: string) => `
apiVersion: tandem/v1
kind: Workspace
metadata: { name: erp, version: 1.0.0 }
spec:
  image: { source: ./erp.qcow2, format: qcow2 }
  guestOs: ${guestOs}
  hardware: { memory: { fixedMiB: 512 } }
  firstTimeSetup: { computerName: "${computerName}" }
`;

describe('validate and first-time setup', () => {
  it('a Windows computer name that is always longer than 15 characters is invalid (exit 3), never cut', async () => {
    writeFileSync(join(dir, 'w.yaml'), workspace('windows', 'FINANCE-ERP-{random4}'));
    const r = await tandem('validate', join(dir, 'w.yaml'));
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(
      /spec\.firstTimeSetup\.computerName: on Windows a computer name \(NetBIOS\) holds at most 15 characters/,
    );
  });

  it('one that depends on the host name is valid with a warning', async () => {
    writeFileSync(join(dir, 'w.yaml'), workspace('windows', 'ERP-{hostName}'));
    const r = await tandem('--json', 'validate', join(dir, 'w.yaml'));
    expect(r.code).toBe(0);
    expect(r.json.warnings[0]).toMatch(/setup fails on a host where that is longer than 11/);
    writeFileSync(join(dir, 'l.yaml'), workspace('linux', 'ERP-{hostName}'));
    expect((await tandem('--json', 'validate', join(dir, 'l.yaml'))).json.warnings).toBeUndefined();
  });

  it('a VM whose guest channel has no agent: tandem guest status says unreachable, exit 1', async () => {
    writeFileSync(join(dir, 'w.yaml'), workspace('linux', 'erp-{random4}'));
    expect((await tandem('up', join(dir, 'w.yaml'), '--adapter', 'mock')).code).toBe(0);
    const r = await tandem('--json', 'guest', 'status', '--timeout', 'PT1S');
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ reachable: false, setup: null });
  });
});
