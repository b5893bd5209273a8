import { createInterface } from 'node:readline';
import { execa } from 'execa';
import type { Clock, HypervisorEvent } from '@tandem/core';
import { eventState, parseLifecycleLine, type LifecycleLine } from './parse.js';

/** How long after one of Tandem's own operations its lifecycle events are still recognized. */
const OWN_EVENT_GRACE_MS = 3_000;

/** Opens a stream of event lines; `onEnd` is called when it ends on its own. */
export type EventStream = (onLine: (line: string) => void, onEnd: () => void) => { stop(): void };

/** The lines of a long-running `virsh event --loop --event lifecycle` (every domain) on `uri`. */
export function virshEventStream(binary: string, uri: string): EventStream {
  return (onLine, onEnd) => {
    const child = execa(binary, ['-q', '-c', uri, 'event', '--loop', '--event', 'lifecycle'], {
      reject: false,
      buffer: false,
      stdin: 'ignore',
      stderr: 'ignore',
      env: { LC_ALL: 'C', LANG: 'C' },
    });
    let stopped = false;
    const rl = createInterface({ input: child.stdout });
    rl.on('line', onLine);
    void child.then(() => {
      rl.close();
      if (!stopped) onEnd();
    });
    return {
      stop: () => {
        stopped = true;
        child.kill();
      },
    };
  };
}

interface Expectation {
  readonly vm: string;
  readonly events: readonly string[];
  /** Infinity while the operation runs. */
  until: number;
}

/**
 * libvirt's domain lifecycle events turned into {@link HypervisorEvent}s. Events that are the
 * expected outcome of Tandem's own calls (a destroy's "Stopped Destroyed") are dropped, so
 * listeners hear what the hypervisor did on its own: a guest shutting down, QEMU dying.
 * The stream runs while someone listens and is reopened when it ends (libvirtd restarted).
 */
export class LifecycleEvents {
  readonly #listeners = new Set<(e: HypervisorEvent) => void>();
  readonly #expected = new Set<Expectation>();
  #stream: { stop(): void } | undefined;
  #closed = false;

  constructor(
    readonly open: EventStream,
    readonly clock: Clock,
    /** Delay before the stream is reopened after it ended. */
    readonly reconnectMs = 1_000,
    /** Called when the stream ended on its own (libvirtd went away, or virsh did). */
    readonly onEnd?: () => void,
  ) {}

  /** Adds a listener; the event stream runs while there is at least one. */
  subscribe(listener: (e: HypervisorEvent) => void): () => void {
    this.#listeners.add(listener);
    if (!this.#stream) this.#start();
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#stop();
    };
  }

  /**
   * Marks events that an operation of Tandem's on `vm` will cause (`Stopped Destroyed`, or a
   * prefix such as `Started`). Call the returned function when the operation ends.
   */
  expect(vm: string, events: readonly string[]): () => void {
    const entry: Expectation = { vm, events, until: Number.POSITIVE_INFINITY };
    this.#expected.add(entry);
    return () => {
      entry.until = this.clock.now() + OWN_EVENT_GRACE_MS;
    };
  }

  /** Stops the event stream and forgets every listener. */
  close(): void {
    this.#closed = true;
    this.#listeners.clear();
    this.#stop();
  }

  #handle(line: string): void {
    const parsed = parseLifecycleLine(line);
    if (!parsed) return;
    const state = eventState(parsed);
    if (state === null || this.#isOwn(parsed)) return;
    const event: HypervisorEvent = {
      vm: parsed.vm,
      state,
      reason: parsed.detail ? `${parsed.event} ${parsed.detail}` : parsed.event,
      at: this.clock.now(),
    };
    for (const l of this.#listeners) {
      try {
        l(event);
      } catch {
        // A listener's failure must not stop the others or the stream.
      }
    }
  }

  #isOwn(e: LifecycleLine): boolean {
    const now = this.clock.now();
    const text = e.detail ? `${e.event} ${e.detail}` : e.event;
    for (const x of this.#expected) {
      if (x.until < now) {
        this.#expected.delete(x);
        continue;
      }
      if (x.vm === e.vm && x.events.some((p) => text.startsWith(p))) return true;
    }
    return false;
  }

  #start(): void {
    if (this.#closed) return;
    const stream = this.open(
      (line) => this.#handle(line),
      () => {
        if (this.#stream !== stream) return;
        this.#stream = undefined;
        this.onEnd?.();
        if (this.#listeners.size === 0 || this.#closed) return;
        void this.clock
          .sleep(this.reconnectMs)
          .catch(() => undefined)
          .then(() => {
            if (!this.#stream && this.#listeners.size > 0) this.#start();
          });
      },
    );
    this.#stream = stream;
  }

  #stop(): void {
    const stream = this.#stream;
    this.#stream = undefined;
    stream?.stop();
  }
}
