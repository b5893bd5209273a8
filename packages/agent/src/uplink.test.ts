import { join } from 'node:path';
import { VirtualClock, type AnyTandemEvent } from '@tandem/core';
import { afterEach, describe, expect, it } from 'vitest';
import { mockOpener, tempDir, writeWorkspace } from './fixtures.test-helper.js';
import { HostAgent } from './host-agent.js';
import { startReceiver, type TestReceiver } from './receiver.test-helper.js';
import { httpUplink, type EventUplink } from './uplink.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** An uplink that records which events each send carried and which sends succeeded. */
function recording(inner: EventUplink): { uplink: EventUplink; acked: Set<string>; resentAfterAck: string[] } {
  const acked = new Set<string>();
  const resentAfterAck: string[] = [];
  return {
    acked,
    resentAfterAck,
    uplink: {
      async send(batch, signal) {
        for (const e of batch) if (acked.has(e.id)) resentAfterAck.push(e.id);
        await inner.send(batch, signal);
        for (const e of batch) acked.add(e.id);
      },
    },
  };
}

async function setup(
  receiver: TestReceiver,
  clock: VirtualClock,
): Promise<{ agent: HostAgent; rec: ReturnType<typeof recording> }> {
  const t = tempDir();
  cleanups.push(t.remove);
  const rec = recording(httpUplink({ url: receiver.url }));
  const agent = new HostAgent({
    stateDir: join(t.dir, 'state'),
    openAdapter: mockOpener(join(t.dir, 'state', 'mock', 'hypervisor.json'), clock),
    clock,
    uplink: rec.uplink,
    shipper: { batchSize: 4, sendTimeoutMs: 2_000, initialBackoffMs: 1_000, maxBackoffMs: 8_000 },
  });
  await agent.start();
  cleanups.push(() => agent.close());
  const file = writeWorkspace(t.dir);
  await agent.up({ file, adapter: 'mock' });
  return { agent, rec };
}

const ids = (events: readonly AnyTandemEvent[]): string[] => events.map((e) => e.id);

describe('event shipping', () => {
  it('delivers every event once, in order, across a refusing, a hanging and a closed receiver', async () => {
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    const clock = new VirtualClock(Date.parse('2026-12-01T09:00:00Z'));
    const { agent, rec } = await setup(receiver, clock);
    await agent.shipper!.drained();
    expect(receiver.stored).toEqual(ids(agent.store.query()));

    // Refused (HTTP 503): kept, retried after the backoff.
    receiver.mode = 'refuse';
    await agent.lock({});
    await expect.poll(() => agent.shipper!.status.failures).toBeGreaterThan(0);
    receiver.mode = 'ok';
    await clock.waitForSleepers(1);
    await clock.advance(60_000);
    await agent.shipper!.drained();

    // Closed: connection refused until it comes back, however long that is.
    await receiver.shut();
    await agent.unlock({});
    await agent.suspend({});
    await expect.poll(() => agent.shipper!.status.lastError).toMatch(/reach/);
    for (let i = 0; i < 3; i++) {
      await clock.waitForSleepers(1);
      const failures = agent.shipper!.status.failures;
      await clock.advance(3_600_000); // hours offline
      await expect.poll(() => agent.shipper!.status.failures).toBeGreaterThan(failures);
    }
    await receiver.open();
    await clock.waitForSleepers(1);
    await clock.advance(3_600_000);
    await agent.shipper!.drained();

    // Hanging: the send times out, the batch is sent again.
    receiver.mode = 'hang';
    await agent.resume({});
    const failures = agent.shipper!.status.failures;
    await expect.poll(() => receiver.held.length).toBeGreaterThan(0);
    await expect.poll(() => agent.shipper!.status.failures, { timeout: 30_000 }).toBeGreaterThan(failures);
    receiver.mode = 'ok';
    await clock.waitForSleepers(1);
    await clock.advance(3_600_000);
    await agent.shipper!.drained();

    const local = ids(agent.store.query());
    expect(receiver.stored).toEqual(local);
    expect(rec.resentAfterAck).toEqual([]);
    expect(agent.queue!.depth).toBe(0);
  });
});
