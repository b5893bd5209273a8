import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runQuickstart } from './quickstart.js';

describe('quickstart example', () => {
  it('runs the whole session and prints each event as it happens', async () => {
    const lines: string[] = [];
    const events = await runQuickstart((l) => lines.push(l));
    const transitions = events.flatMap((e) => (e.type === 'session.transition' ? [`${e.data.from}>${e.data.to}`] : []));
    expect(transitions).toEqual([
      'stopped>starting',
      'starting>running',
      'running>suspended',
      'suspended>running',
      'running>stopping',
      'stopping>stopped',
    ]);
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['snapshot.created', 'snapshot.reverted']));
    expect(lines.filter((l) => l.includes('[event]'))).toHaveLength(events.length);
    expect(lines.join('\n')).toContain('with 2048 MiB');
  });

  it('is what the README shows as the quick start', () => {
    const readme = readFileSync(fileURLToPath(new URL('../../../README.md', import.meta.url)), 'utf8');
    const source = readFileSync(fileURLToPath(new URL('./readme.ts', import.meta.url)), 'utf8');
    const body = source.split('\n').slice(1).join('\n').trim(); // without the comment line
    expect(readme).toContain('```ts\n' + body + '\n```');
  });
});

describe('README quick start', () => {
  it('really runs', async () => {
    const lines: string[] = [];
    const spy = (await import('vitest')).vi.spyOn(console, 'log').mockImplementation((l: string) => void lines.push(l));
    try {
      await import('./readme.js');
    } finally {
      spy.mockRestore();
    }
    // The workspace file says `onSessionEnd: snapshot`; the machine policy layer says shutdown, and wins.
    expect(lines).toEqual([
      'stopped -> starting',
      'starting -> running',
      'running -> stopping',
      'stopping -> stopped',
      'ended: shutdown',
    ]);
  });
});
