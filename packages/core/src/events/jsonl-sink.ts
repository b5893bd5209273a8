import { appendFileSync, mkdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { EventSink } from './bus.js';
import type { AnyTandemEvent } from './types.js';

/**
 * Appends each event as one JSON line. Each write is a single append, so a crash loses at
 * most the event being written, never earlier ones.
 */
export class JsonLinesSink implements EventSink {
  readonly path: string;
  constructor(path: string) {
    this.path = path;
    mkdirSync(dirname(path), { recursive: true });
  }

  write(event: AnyTandemEvent): void {
    appendFileSync(this.path, JSON.stringify(event) + '\n');
  }

  /** Reads every event back, skipping a torn last line left by a crash. */
  read(): AnyTandemEvent[] {
    if (!existsSync(this.path)) return [];
    const out: AnyTandemEvent[] = [];
    for (const line of readFileSync(this.path, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as AnyTandemEvent);
      } catch {
        // a partial line from an interrupted write
      }
    }
    return out;
  }
}
