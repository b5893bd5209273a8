import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '@tandem/core';
import { eventState, parseLifecycleLine } from './parse.js';
import { LifecycleEvents } from './watcher.js';

describe('virsh lifecycle event lines', () => {
  it('parses recorded lines (libvirt 9.0), with and without timestamps', () => {
    expect(parseLifecycleLine("event 'lifecycle' for domain 'tandem-erp': Stopped Failed")).toEqual({
      vm: 'tandem-erp',
      event: 'Stopped',
      detail: 'Failed',
    });
    expect(
      parseLifecycleLine(
        "2026-11-21 19:30:49.875+0000: event 'lifecycle' for domain 'x': Shutdown Finished after guest request",
      ),
    ).toEqual({ vm: 'x', event: 'Shutdown', detail: 'Finished after guest request' });
    expect(parseLifecycleLine("event 'reboot' for domain 'x'")).toBeNull();
    expect(parseLifecycleLine('events received: 3')).toBeNull();
  });

  it('recovers any VM name, quotes and colons included', () => {
    const name = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }).filter((s) => !/[\n\r]/.test(s));
    const event = fc.constantFrom(
      'Started Booted',
      'Stopped Shutdown',
      'Suspended I/O Error',
      'Resumed Unpaused',
      'Crashed Panicked',
    );
    fc.assert(
      fc.property(name, event, (vm, e) => {
        const [ev, ...detail] = e.split(' ');
        expect(parseLifecycleLine(`event 'lifecycle' for domain '${vm}': ${e}`)).toEqual({
          vm,
          event: ev,
          detail: detail.join(' '),
        });
      }),
    );
  });

  it('maps events to states: a killed QEMU is crashed, a managed save is saved', () => {
    expect(eventState({ vm: 'v', event: 'Stopped', detail: 'Failed' })).toBe('crashed');
    expect(eventState({ vm: 'v', event: 'Stopped', detail: 'Shutdown' })).toBe('stopped');
    expect(eventState({ vm: 'v', event: 'Stopped', detail: 'Saved' })).toBe('saved');
    expect(eventState({ vm: 'v', event: 'Shutdown', detail: 'Finished after guest request' })).toBe('stopping');
    expect(eventState({ vm: 'v', event: 'Suspended', detail: 'Paused' })).toBe('paused');
    expect(eventState({ vm: 'v', event: 'Defined', detail: 'Added' })).toBeNull();
  });
});

describe('own-operation filtering', () => {
  function fed(clock: VirtualClock): {
    events: LifecycleEvents;
    feed: (line: string) => void;
    end: () => void;
    opened: () => number;
  } {
    let onLine: (l: string) => void = () => undefined;
    let onEnd: () => void = () => undefined;
    let opened = 0;
    const events = new LifecycleEvents((l, e) => {
      opened++;
      onLine = l;
      onEnd = e;
      return { stop: () => undefined };
    }, clock);
    return { events, feed: (l) => onLine(l), end: () => onEnd(), opened: () => opened };
  }

  it("drops what Tandem caused, within a grace period, and passes on the hypervisor's own", async () => {
    const clock = new VirtualClock(1_000);
    const { events, feed } = fed(clock);
    const seen: string[] = [];
    events.subscribe((e) => seen.push(`${e.vm}:${e.state}:${e.reason}`));
    const done = events.expect('a', ['Stopped Destroyed', 'Started']);
    feed("event 'lifecycle' for domain 'a': Started Booted");
    feed("event 'lifecycle' for domain 'b': Stopped Destroyed");
    done();
    feed("event 'lifecycle' for domain 'a': Stopped Destroyed");
    feed("event 'lifecycle' for domain 'a': Stopped Failed");
    await clock.advance(3_001);
    feed("event 'lifecycle' for domain 'a': Stopped Destroyed");
    expect(seen).toEqual(['b:stopped:Stopped Destroyed', 'a:crashed:Stopped Failed', 'a:stopped:Stopped Destroyed']);
  });

  it('reopens the stream when it ends while someone listens, not after the last unsubscribe', async () => {
    const clock = new VirtualClock(0);
    const { events, end, opened } = fed(clock);
    const off = events.subscribe(() => undefined);
    expect(opened()).toBe(1);
    end();
    await clock.advance(1_000);
    expect(opened()).toBe(2);
    off();
    end();
    await clock.advance(5_000);
    expect(opened()).toBe(2);
  });
});
