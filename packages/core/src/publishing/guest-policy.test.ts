import { afterEach, describe, expect, it } from 'vitest';
import { TandemError } from '../errors.js';
import { AgentEndpoint, type AgentHandlers } from '../guest/agent-endpoint.js';
import { GuestConnection } from '../guest/connection.js';
import { FakeVirtioPort } from '../guest/fake-port.test-helper.js';
import { DENY_ALL, permissionsFrom } from './enforcement.js';
import { applyWindowsGuestPolicy } from './guest-policy.js';

const open: GuestConnection[] = [];
const stops: (() => void)[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
  for (const s of stops.splice(0)) s();
});

async function guestWith(handlers: AgentHandlers): Promise<GuestConnection> {
  const port = new FakeVirtioPort();
  const agent = new AgentEndpoint({
    software: 'test-agent',
    version: '1.0.0',
    handlers: { ping: async () => ({}), ...handlers },
  });
  let stopped = false;
  void (async () => {
    while (!stopped) {
      await agent.serve(port.attachGuest());
      await new Promise((r) => setImmediate(r));
    }
  })();
  stops.push(() => {
    stopped = true;
    port.detachGuest();
  });
  const conn = new GuestConnection({ adapter: { name: 'fake', guestChannel: port }, vm: 'vm1', helloTimeoutMs: 5000 });
  open.push(conn);
  await conn.open({ timeoutMs: 5000 });
  return conn;
}

describe('applyWindowsGuestPolicy', () => {
  it('sends the Remote Desktop policy values to the agent, validated on its side', async () => {
    const received: unknown[] = [];
    const conn = await guestWith({
      'rdp-policy.apply': async (params) => {
        received.push(params);
        return { applied: params!.values.map((v) => `${v.name}=${v.value}`) };
      },
    });
    expect(conn.agent?.capabilities).toContain('rdp-policy');
    const applied = await applyWindowsGuestPolicy(conn, DENY_ALL);
    expect(applied).toEqual([
      'fDisableClip=1',
      'fDisableCdm=1',
      'fDisableCpm=1',
      'fEnableSmartCard=0',
      'fDisablePNPRedir=1',
      'fDisableAudioCapture=1',
      'fDisableCam=1',
      'fDisableCcm=1',
      'fDisableLPT=1',
    ]);
    // Allowing everything opens all but the ports, which stay off.
    const open = await applyWindowsGuestPolicy(
      conn,
      permissionsFrom(() => 'allow'),
    );
    expect(open).toContain('fDisableClip=0');
    expect(open).toContain('fDisableLPT=1');
    expect(received).toHaveLength(2);

    // A value outside the list never reaches the handler: the agent's schema refuses it.
    const bad = await conn.applyRdpPolicy([{ name: 'Shadow' as 'fDisableClip', value: 1 }]).catch((e: unknown) => e);
    expect(TandemError.is(bad)).toBe(true);
    expect(received).toHaveLength(2);
  });

  it('is a typed capability-missing outcome on an agent without rdp-policy (a Linux guest)', async () => {
    const conn = await guestWith({});
    const err = await applyWindowsGuestPolicy(conn, DENY_ALL).catch((e: unknown) => e);
    expect(TandemError.is(err, 'TANDEM_AGENT_CAPABILITY')).toBe(true);
  });
});
