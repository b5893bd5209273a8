import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { TandemError } from '../errors.js';
import { EventBus } from '../events/bus.js';
import type { AnyTandemEvent, TandemEventType } from '../events/types.js';
import { PolicyEngine } from '../policy/engine.js';
import { validateWorkspace } from '../workspace/load.js';
import { AgentEndpoint, type AgentHandlers } from './agent-endpoint.js';
import { GuestConnection } from './connection.js';
import { AgentUnreachableError, CapabilityMissingError, GuestOperationError } from './errors.js';
import { FakeVirtioPort } from './fake-port.test-helper.js';
import { encodeFrame } from './framing.js';
import type { GuestCapability, GuestInfo } from './protocol.js';

const INFO: GuestInfo = {
  os: { family: 'linux', name: 'Debian GNU/Linux', version: '12', kernel: '6.1.0-28-cloud-amd64', arch: 'x64' },
  hostname: 'guest',
  addresses: [],
  uptimeSeconds: 3,
  agentVersion: '0.1.0',
};

function agent(handlers: AgentHandlers = {}, extra: readonly string[] = []): AgentEndpoint {
  return new AgentEndpoint({
    software: 'test-agent',
    version: '9.9.9',
    handlers: { ping: async () => ({}), info: async () => INFO, ...handlers },
    eventCapabilities: ['url-to-host', ...extra] as GuestCapability[],
  });
}

function events(bus: EventBus): AnyTandemEvent[] {
  const seen: AnyTandemEvent[] = [];
  bus.on('*', (e) => seen.push(e));
  return seen;
}

function next(
  bus: EventBus,
  type: TandemEventType,
  where: (e: AnyTandemEvent) => boolean = () => true,
): Promise<AnyTandemEvent> {
  return new Promise((resolve) => {
    const on = (e: AnyTandemEvent): void => {
      if (e.type === type && where(e)) {
        bus.off('*', on);
        resolve(e);
      }
    };
    bus.on('*', on);
  });
}

/** Serves the port as the real agent does: after EOF (the host went away) it opens the port again. */
function serveForever(port: FakeVirtioPort, a: AgentEndpoint = agent()): { agent: AgentEndpoint; stop: () => void } {
  let stopped = false;
  void (async () => {
    while (!stopped) {
      await a.serve(port.attachGuest());
      await new Promise((r) => setImmediate(r));
    }
  })();
  return {
    agent: a,
    stop: () => {
      stopped = true;
      port.detachGuest();
    },
  };
}

const open: GuestConnection[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

function connect(
  port: FakeVirtioPort,
  bus = new EventBus(),
  extra: Partial<ConstructorParameters<typeof GuestConnection>[0]> = {},
) {
  const conn = new GuestConnection({
    adapter: { name: 'fake', guestChannel: port },
    vm: 'vm1',
    bus,
    backoff: { initialMs: 5, maxMs: 50 },
    helloTimeoutMs: 2000,
    ...extra,
  });
  open.push(conn);
  return conn;
}

describe('GuestConnection and AgentEndpoint', () => {
  it('says hello both ways, uses the common protocol version and ignores unknown capabilities', async () => {
    const port = new FakeVirtioPort();
    const bus = new EventBus();
    const seen = events(bus);
    void agent({}, ['teleport']).serve(port.attachGuest());
    const conn = connect(port, bus);
    const described = await conn.open({ timeoutMs: 30_000 });
    expect(described).toMatchObject({ software: 'test-agent', version: '9.9.9', protocol: 1, ignored: ['teleport'] });
    expect(described.capabilities).toEqual(expect.arrayContaining(['info', 'url-to-host']));
    expect(described.capabilities).not.toContain('teleport');
    expect(await conn.info()).toEqual(INFO);
    expect(seen.map((e) => e.type)).toEqual(expect.arrayContaining(['guest.connected', 'guest.capabilities']));
    expect(seen.find((e) => e.type === 'guest.capabilities')?.data).toMatchObject({ ignored: ['teleport'] });
  });

  it('a capability the agent did not advertise is CapabilityMissingError, never sent', async () => {
    const port = new FakeVirtioPort();
    void agent().serve(port.attachGuest());
    const conn = connect(port);
    await conn.open({ timeoutMs: 30_000 });
    const err = await conn.apps().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CapabilityMissingError);
    expect(err).toMatchObject({ code: 'TANDEM_AGENT_CAPABILITY', capability: 'apps' });
  });

  it('no agent on the channel is AgentUnreachableError, a different outcome', async () => {
    const port = new FakeVirtioPort(); // nobody attached: the host's hello goes nowhere
    const conn = connect(port, new EventBus(), { helloTimeoutMs: 50 });
    const err = await conn.open({ timeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentUnreachableError);
    expect(TandemError.is(err, 'TANDEM_AGENT_UNREACHABLE')).toBe(true);
    expect((err as TandemError).retryable).toBe(true);
    expect(conn.state).toBe('closed');
  });

  it('an adapter without a guest channel is refused as unsupported', async () => {
    const conn = new GuestConnection({ adapter: { name: 'bare' }, vm: 'vm1' });
    await expect(conn.open()).rejects.toMatchObject({ code: 'TANDEM_UNSUPPORTED' });
  });

  it('a late answer to a request that timed out is dropped: the next request gets its own answer', async () => {
    const port = new FakeVirtioPort();
    let release: (() => void) | undefined;
    let calls = 0;
    void agent({
      info: async () => {
        calls++;
        if (calls === 1) await new Promise<void>((r) => (release = r));
        return { ...INFO, hostname: `answer-${calls}` };
      },
    }).serve(port.attachGuest());
    const conn = connect(port);
    await conn.open({ timeoutMs: 30_000 });
    await expect(conn.info({ timeoutMs: 50 })).rejects.toBeInstanceOf(AgentUnreachableError);
    release?.();
    expect((await conn.info()).hostname).toBe('answer-2');
  });

  it('an AbortSignal cancels the request on both ends', async () => {
    const port = new FakeVirtioPort();
    let aborted: Promise<void> | undefined;
    void agent({
      info: (_p, { signal }) =>
        new Promise((_resolve, reject) => {
          aborted = new Promise<void>((r) =>
            signal.addEventListener('abort', () => {
              r();
              reject(new Error('cancelled'));
            }),
          );
        }),
    }).serve(port.attachGuest());
    const conn = connect(port);
    await conn.open({ timeoutMs: 30_000 });
    const ac = new AbortController();
    const call = conn.info({ signal: ac.signal });
    while (!aborted) await new Promise((r) => setImmediate(r));
    ac.abort();
    await expect(call).rejects.toMatchObject({ code: 'TANDEM_CANCELLED' });
    await aborted; // the agent saw the cancel
  });

  it("a failure in the guest carries the guest's own message and its retryability", async () => {
    const port = new FakeVirtioPort();
    void agent({
      info: async () => {
        throw new GuestOperationError('x', "realm: Couldn't join realm: Insufficient permissions", {
          retryable: true,
          details: { guestCode: 'realm-1' },
        });
      },
    }).serve(port.attachGuest());
    const conn = connect(port);
    await conn.open({ timeoutMs: 30_000 });
    const err = (await conn.info().catch((e: unknown) => e)) as GuestOperationError;
    expect(err).toBeInstanceOf(GuestOperationError);
    expect(err.guestMessage).toMatch(/Insufficient permissions/);
    expect(err.retryable).toBe(true);
    expect(err.details).toMatchObject({ guestCode: 'realm-1' });
  });

  it('an agent restart on the same channel is seen (new instance): disconnected, then connected again', async () => {
    const port = new FakeVirtioPort();
    const bus = new EventBus();
    void agent().serve(port.attachGuest());
    const conn = connect(port, bus);
    await conn.open({ timeoutMs: 30_000 });
    const first = conn.agent?.instance;
    const gone = next(bus, 'guest.disconnected');
    const back = next(bus, 'guest.connected', (e) => e.type === 'guest.connected' && e.data.reconnect);
    port.detachGuest();
    void agent().serve(port.attachGuest());
    expect((await gone).data).toMatchObject({ reason: 'the agent restarted' });
    await back;
    expect(conn.agent?.instance).not.toBe(first);
    expect((await conn.info()).hostname).toBe('guest');
  });

  it('an agent that goes silent (the guest rebooted) is detected by ping, and the host reconnects when it is back', async () => {
    const port = new FakeVirtioPort();
    const bus = new EventBus();
    const first = serveForever(port);
    const conn = connect(port, bus, { pingIntervalMs: 20, pingTimeoutMs: 200, helloTimeoutMs: 200 });
    await conn.open({ timeoutMs: 30_000 });
    const gone = next(bus, 'guest.disconnected');
    first.stop(); // silent: no EOF reaches the host
    expect((await gone).data).toMatchObject({ vm: 'vm1' });
    const back = next(bus, 'guest.connected');
    const second = serveForever(port);
    await back;
    expect((await conn.info()).os.kernel).toBe(INFO.os.kernel);
    expect(port.opens).toBeGreaterThan(1); // it closed the silent channel and opened it again
    second.stop();
  });

  it('the channel closing (EOF) makes the host reopen it', async () => {
    const port = new FakeVirtioPort();
    const bus = new EventBus();
    const served = serveForever(port);
    const conn = connect(port, bus);
    await conn.open({ timeoutMs: 30_000 });
    const back = next(bus, 'guest.connected', (e) => e.type === 'guest.connected' && e.data.reconnect);
    port.dropHost();
    await back;
    expect(port.opens).toBe(2);
    expect((await conn.info()).hostname).toBe('guest');
    served.stop();
  });

  it('a URL the guest sends is decided by the policy and published with its explanation', async () => {
    const port = new FakeVirtioPort();
    const bus = new EventBus();
    const workspace = validateWorkspace({
      apiVersion: 'tandem/v1',
      kind: 'Workspace',
      metadata: { name: 'erp', version: '1.0.0' },
      spec: {
        image: { source: 'x.qcow2', format: 'qcow2' },
        hardware: { memory: { fixedMiB: 512 } },
        webRedirection: {
          guestToHost: true,
          defaultTarget: 'host',
          rules: [{ id: 'intranet', match: { domainSuffix: 'intranet.example' }, target: 'guest' }],
        },
      },
    });
    const policy = new PolicyEngine({ workspace }).forSubject({});
    const opened: string[] = [];
    const a = agent();
    void a.serve(port.attachGuest());
    const conn = connect(port, bus, { policy, onUrlToHost: (url) => opened.push(url) });
    await conn.open({ timeoutMs: 30_000 });
    const first = next(bus, 'guest.url-to-host');
    expect(a.sendEvent('url-to-host', { url: 'https://www.example.com/news' })).toBe(true);
    expect((await first).data).toMatchObject({ url: 'https://www.example.com/news', target: 'host', redirect: true });
    const second = next(bus, 'guest.url-to-host');
    a.sendEvent('url-to-host', { url: 'http://erp.intranet.example/' });
    const d = (await second).data as { target: string; redirect: boolean; rule?: string; reason: string };
    expect(d).toMatchObject({ target: 'guest', redirect: false, rule: 'intranet' });
    expect(d.reason).not.toBe('');
    expect(opened).toEqual(['https://www.example.com/news']);
  });

  it('fuzz: whatever bytes the guest side writes, the host never throws and the next request is answered', async () => {
    const port = new FakeVirtioPort();
    const bus = new EventBus();
    void agent().serve(port.attachGuest());
    const conn = connect(port, bus);
    await conn.open({ timeoutMs: 30_000 });
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2000 }), async (bytes) => {
        port.injectFromGuest(bytes);
        // A frame start ends whatever half-frame the garbage left, as a real agent's next message does.
        port.injectFromGuest(Buffer.from([0xff]));
        port.injectFromGuest(encodeFrame({ type: 'event', name: 'nonsense', data: 1 }));
        expect((await conn.info({ timeoutMs: 30_000 })).hostname).toBe('guest');
      }),
      { numRuns: 40 },
    );
    expect(conn.state).toBe('connected');
  });

  it('fuzz: whatever bytes the host side writes, the agent never throws and answers the next request', async () => {
    const port = new FakeVirtioPort();
    const a = agent();
    const guest = port.attachGuest();
    void a.serve(guest);
    const host = await port.open();
    const replies: Buffer[] = [];
    host.on('data', (b: Buffer) => replies.push(b));
    const send = (m: Parameters<typeof encodeFrame>[0]): void => void host.write(encodeFrame(m));
    send({ type: 'hello', role: 'host', software: 't', version: '1', protocols: [1], capabilities: [], instance: 'h' });
    let id = 1;
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2000 }), async (bytes) => {
        host.write(bytes);
        const rid = ++id;
        replies.length = 0;
        send({ type: 'request', id: rid, method: 'info' });
        for (;;) {
          const text = Buffer.concat(replies).toString('utf8');
          if (text.includes(`"id":${rid},"result"`)) break;
          await new Promise((r) => setImmediate(r));
        }
      }),
      { numRuns: 40 },
    );
  });

  it('the agent answers bad requests with typed errors: unknown method, invalid params, hello first', async () => {
    const port = new FakeVirtioPort();
    void agent({ 'open-url': async () => ({ opened: true }) }).serve(port.attachGuest());
    const host = await port.open();
    const lines: string[] = [];
    host.on('data', (b: Buffer) => lines.push(...b.toString('utf8').split('\n')));
    const reply = async (id: number): Promise<{ error?: { code: string } }> => {
      for (;;) {
        const hit = lines.find((l) => l.includes(`"id":${id},`));
        if (hit) return JSON.parse(hit.replace(/^\xff|^\uFFFD/, '')) as { error?: { code: string } };
        await new Promise((r) => setImmediate(r));
      }
    };
    host.write(encodeFrame({ type: 'request', id: 1, method: 'info' }));
    expect((await reply(1)).error?.code).toBe('hello-first');
    host.write(
      encodeFrame({
        type: 'hello',
        role: 'host',
        software: 't',
        version: '1',
        protocols: [1, 7],
        capabilities: [],
        instance: 'h',
      }),
    );
    host.write(encodeFrame({ type: 'request', id: 2, method: 'format-disk' }));
    expect((await reply(2)).error?.code).toBe('unknown-method');
    host.write(encodeFrame({ type: 'request', id: 3, method: 'open-url', params: { url: 'javascript:alert(1)' } }));
    expect((await reply(3)).error?.code).toBe('invalid-params');
    host.write(encodeFrame({ type: 'request', id: 4, method: 'apps' }));
    expect((await reply(4)).error?.code).toBe('capability-missing');
  });
});
