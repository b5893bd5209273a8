import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { IntegrityError, type AnyTandemEvent, type EventSink } from '@tandem/core';
import { fsyncDirectory, writeFileAtomic } from './atomic-file.js';

/** A place in the queue: a segment and a byte offset in it. */
export interface QueuePosition {
  segment: number;
  offset: number;
}

/** Events read from the queue, and the position just after the last of them. */
export interface QueueBatch {
  events: AnyTandemEvent[];
  end: QueuePosition;
}

/** Options of {@link DiskEventQueue}. */
export interface DiskEventQueueOptions {
  /** A segment is closed and a new one begun past this size. Default 1 MiB. */
  segmentBytes?: number;
}

const SEGMENT = /^segment-(\d{12})\.jsonl$/;
const name = (n: number): string => `segment-${String(n).padStart(12, '0')}.jsonl`;

/**
 * The crash-safe queue of events waiting for the uplink. Append-only segment files of JSON
 * lines, each append flushed to disk (fsync) before it returns; an acknowledged position kept in
 * `ack.json` (replaced atomically); segments wholly before it deleted. A crash mid-append leaves
 * at most a torn last line, which was never acknowledged to anyone and is cut off when the queue
 * opens again. Attach it to the event bus before the local store: an event the store has is
 * then always in the queue.
 *
 * @example
 * ```ts
 * const queue = new DiskEventQueue(join(stateDir, 'uplink'));
 * events.attach(queue);
 * const batch = queue.peek(100);
 * await uplink.send(batch.events, signal);
 * queue.ack(batch.end);
 * ```
 */
export class DiskEventQueue implements EventSink {
  readonly dir: string;
  readonly #segmentBytes: number;
  #ack: QueuePosition;
  #tail: { segment: number; fd: number; size: number };
  #depth: number;
  #closed = false;

  constructor(dir: string, options: DiskEventQueueOptions = {}) {
    this.dir = dir;
    this.#segmentBytes = options.segmentBytes ?? 1 << 20;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.#ack = this.#readAck();
    const segments = this.#segments();
    const last = segments.at(-1) ?? Math.max(1, this.#ack.segment);
    this.#tail = this.#openTail(last);
    this.#depth = this.#countFrom(this.#ack);
  }

  /** Events appended and not yet acknowledged. */
  get depth(): number {
    return this.#depth;
  }

  /** The acknowledged position: everything before it was delivered. */
  get acknowledged(): QueuePosition {
    return { ...this.#ack };
  }

  /** Appends an event, durably: when this returns the event survives a crash. */
  write(event: AnyTandemEvent): void {
    if (this.#closed) throw new IntegrityError('The event queue is closed; the event was not queued.');
    const line = Buffer.from(JSON.stringify(event) + '\n');
    if (this.#tail.size > 0 && this.#tail.size + line.length > this.#segmentBytes) {
      closeSync(this.#tail.fd);
      this.#tail = this.#openTail(this.#tail.segment + 1);
    }
    let off = 0;
    while (off < line.length) off += writeSync(this.#tail.fd, line, off, line.length - off);
    fsyncSync(this.#tail.fd);
    this.#tail.size += line.length;
    this.#depth += 1;
  }

  /** Up to `max` events from the acknowledged position on, in the order they were appended. */
  peek(max: number, maxBytes = 4 << 20): QueueBatch {
    const events: AnyTandemEvent[] = [];
    let pos = { ...this.#ack };
    let bytes = 0;
    while (events.length < max) {
      const file = join(this.dir, name(pos.segment));
      if (!existsSync(file)) {
        if (pos.segment >= this.#tail.segment) break;
        pos = { segment: pos.segment + 1, offset: 0 };
        continue;
      }
      const data = readFileSync(file);
      let start = pos.offset;
      while (events.length < max && bytes < maxBytes) {
        const nl = data.indexOf(0x0a, start);
        if (nl === -1) break;
        events.push(parseLine(data.subarray(start, nl), file, start));
        bytes += nl + 1 - start;
        start = nl + 1;
      }
      pos = { segment: pos.segment, offset: start };
      if (events.length >= max || bytes >= maxBytes || pos.segment >= this.#tail.segment) break;
      if (start >= data.length) pos = { segment: pos.segment + 1, offset: 0 };
    }
    return { events, end: pos };
  }

  /**
   * Records that everything before `position` was delivered (durably), and deletes the segments
   * wholly before it. Returns how many events that acknowledged.
   */
  ack(position: QueuePosition): number {
    const n = this.#countBetween(this.#ack, position);
    writeFileAtomic(join(this.dir, 'ack.json'), JSON.stringify(position));
    this.#ack = { ...position };
    this.#depth = Math.max(0, this.#depth - n);
    let removed = false;
    for (const s of this.#segments()) {
      if (s < position.segment) {
        unlinkSync(join(this.dir, name(s)));
        removed = true;
      }
    }
    if (removed) fsyncDirectory(this.dir);
    return n;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeSync(this.#tail.fd);
  }

  #segments(): number[] {
    return readdirSync(this.dir)
      .map((f) => SEGMENT.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
  }

  #readAck(): QueuePosition {
    const file = join(this.dir, 'ack.json');
    if (!existsSync(file)) return { segment: this.#segments()[0] ?? 1, offset: 0 };
    const raw = JSON.parse(readFileSync(file, 'utf8')) as Partial<QueuePosition>;
    if (!Number.isInteger(raw.segment) || !Number.isInteger(raw.offset)) {
      throw new IntegrityError(`The uplink queue's acknowledgement ${file} is damaged.`, { details: { file } });
    }
    return { segment: raw.segment!, offset: raw.offset! };
  }

  /** Opens segment `n` for appending, cutting a torn last line off (a crash mid-append). */
  #openTail(n: number): { segment: number; fd: number; size: number } {
    const file = join(this.dir, name(n));
    const created = !existsSync(file);
    const fd = openSync(file, 'a+', 0o600);
    let size = fstatSync(fd).size;
    if (size > 0) {
      const data = readFileSync(file);
      const whole = data.lastIndexOf(0x0a) + 1;
      if (whole < size) {
        ftruncateSync(fd, whole);
        fsyncSync(fd);
        size = whole;
      }
    }
    if (created) fsyncDirectory(this.dir);
    return { segment: n, fd, size };
  }

  #countFrom(from: QueuePosition): number {
    return this.#countBetween(from, { segment: this.#tail.segment, offset: this.#tail.size });
  }

  #countBetween(from: QueuePosition, to: QueuePosition): number {
    let n = 0;
    for (const s of this.#segments()) {
      if (s < from.segment || s > to.segment) continue;
      const data = readFileSync(join(this.dir, name(s)));
      const a = s === from.segment ? from.offset : 0;
      const b = s === to.segment ? Math.min(to.offset, data.length) : data.length;
      for (let i = a; i < b; i++) if (data[i] === 0x0a) n++;
    }
    return n;
  }
}

function parseLine(line: Buffer, file: string, offset: number): AnyTandemEvent {
  try {
    return JSON.parse(line.toString('utf8')) as AnyTandemEvent;
  } catch (cause) {
    throw new IntegrityError(`The uplink queue segment ${file} has a damaged line at byte ${offset}.`, {
      cause,
      details: { file, offset },
    });
  }
}
