import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { InvalidInputError } from '../errors.js';
import { EventBus } from '../events/bus.js';
import { parseWorkspace } from '../workspace/load.js';
import type { WorkspaceIssue } from '../workspace/load.js';
import { AgentEndpoint } from './agent-endpoint.js';
import { GuestConnection } from './connection.js';
import { FakeVirtioPort } from './fake-port.test-helper.js';
import { GuestNetworkSettingsSchema, SetupStepParamsSchema, type SetupStepParams } from './protocol.js';
import { SetupRecordStore } from './setup.js';

const yaml = (network: string): string => `apiVersion: tandem/v1
kind: Workspace
metadata: { name: erp, version: 1.0.0 }
spec:
  image: { source: x.qcow2, format: qcow2 }
  guestOs: linux
  hardware: { memory: { fixedMiB: 512 } }
  network: { mode: nat }
  firstTimeSetup:
    network: ${network}
`;

function issuesOf(text: string): WorkspaceIssue[] {
  try {
    parseWorkspace(text, { file: 'ws.yaml' });
  } catch (err) {
    return (err as InvalidInputError).details['issues'] as WorkspaceIssue[];
  }
  return [];
}

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

describe('spec.firstTimeSetup.network', () => {
  it('accepts DHCP and a static address with gateway, DNS servers and suffix', () => {
    expect(parseWorkspace(yaml('{ dhcp: true }')).spec.firstTimeSetup?.network).toEqual({ dhcp: true });
    const ws = parseWorkspace(
      yaml('{ address: 10.0.2.15/24, gateway: 10.0.2.2, dns: [10.0.2.3], dnsSuffix: corp.example, interface: eth0 }'),
    );
    expect(ws.spec.firstTimeSetup?.network).toEqual({
      address: '10.0.2.15/24',
      gateway: '10.0.2.2',
      dns: ['10.0.2.3'],
      dnsSuffix: 'corp.example',
      interface: 'eth0',
    });
  });

  it.each([
    ['{ address: 10.0.2.15 }', 'spec.firstTimeSetup.network.address', /prefix, such as 10.0.2.15\/24/],
    ['{ address: 10.0.2.300/24 }', 'spec.firstTimeSetup.network.address', /IPv4 address with its prefix/],
    ['{ address: 10.0.2.15/24, gateway: gw.corp }', 'spec.firstTimeSetup.network.gateway', /IPv4 address/],
    ['{ dhcp: true, dns: [10.0.2.3, x] }', 'spec.firstTimeSetup.network.dns[1]', /IPv4 address/],
    ['{ dhcp: true, dnsSuffix: "corp..example" }', 'spec.firstTimeSetup.network.dnsSuffix', /DNS name/],
    ['{ dhcp: true, address: 10.0.2.15/24 }', 'spec.firstTimeSetup.network.address', /either dhcp: true or an address/],
    ['{ dns: [10.0.2.3] }', 'spec.firstTimeSetup.network.address', /or dhcp: true/],
    ['{ dhcp: true, gateway: 10.0.2.2 }', 'spec.firstTimeSetup.network.gateway', /goes with a static address/],
    ['{ dhcp: true, mask: 24 }', 'spec.firstTimeSetup.network.mask', /unknown key/],
  ])('%s is refused at %s', (network, path, message) => {
    const issue = issuesOf(yaml(network)).find((i) => i.path === path);
    expect(issue, JSON.stringify(issuesOf(yaml(network)))).toBeDefined();
    expect(issue?.message).toMatch(message);
    expect(issue?.line).toBeGreaterThan(0);
  });
});

describe('the network step on the wire', () => {
  it('the params carry the settings, validated; a bad address is refused by the schema on either end', () => {
    const ok = {
      instance: 'i-1',
      step: 'network',
      mode: 'nat',
      settings: { address: '10.0.2.15/24', gateway: '10.0.2.2' },
    };
    expect(SetupStepParamsSchema.parse(ok)).toEqual(ok);
    expect(SetupStepParamsSchema.safeParse({ ...ok, settings: { address: '10.0.2.15/33' } }).success).toBe(false);
    expect(SetupStepParamsSchema.safeParse({ ...ok, settings: { dhcp: true, extra: 1 } }).success).toBe(false);
    expect(GuestNetworkSettingsSchema.safeParse({ dhcp: true, interface: '-rf' }).success).toBe(false);
  });

  it('runFirstTimeSetup sends spec.firstTimeSetup.network to the agent in the network step', async () => {
    const port = new FakeVirtioPort();
    const received: SetupStepParams[] = [];
    const agent = new AgentEndpoint({
      software: 'test-agent',
      version: '1',
      handlers: {
        ping: async () => ({}),
        'setup.status': async () => ({ completed: [] }),
        'setup.step': async (p?: SetupStepParams) => {
          received.push(p!);
          return {
            step: p!.step,
            status: 'done' as const,
            message: 'eth0: address 10.0.2.15/24 added',
            rebootRequired: false,
          };
        },
      },
    });
    void agent.serve(port.attachGuest());
    const bus = new EventBus();
    const conn = new GuestConnection({
      adapter: { name: 'fake', guestChannel: port },
      vm: 'vm1',
      bus,
      backoff: { initialMs: 5, maxMs: 50 },
    });
    closers.push(() => conn.close());
    await conn.open({ timeoutMs: 30_000 });
    const dir = mkdtempSync(join(tmpdir(), 'tandem-setup-net-'));
    closers.push(() => rmSync(dir, { recursive: true, force: true }));
    const workspace = parseWorkspace(yaml('{ address: 10.0.2.15/24, gateway: 10.0.2.2, dns: [10.0.2.3] }'));
    const result = await conn.setup({ workspace, records: new SetupRecordStore(dir), bus });
    expect(result.status).toBe('done');
    expect(received).toEqual([
      {
        instance: expect.any(String),
        step: 'network',
        mode: 'nat',
        settings: { address: '10.0.2.15/24', gateway: '10.0.2.2', dns: ['10.0.2.3'] },
      },
    ]);
  });
});
