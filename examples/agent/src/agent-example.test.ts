import { describe, expect, it } from 'vitest';
import { runAgentExample } from './agent-example.js';

describe('the agent example', () => {
  it('shows an idle lock, a lock on sleep, a watchdog restart and an expired lease through the agent API', async () => {
    const { lines, events } = await runAgentExample();
    const causes = events.filter((e) => e.type === 'session.locked').map((e) => (e.data as { cause: string }).cause);
    expect(causes).toEqual(expect.arrayContaining(['idle', 'host-sleep']));
    expect(events.some((e) => e.type === 'watchdog.restarted')).toBe(true);
    expect(events.filter((e) => e.type === 'usage.limit')).toEqual([
      expect.objectContaining({ data: expect.objectContaining({ check: 'lease', action: 'stop' }) }),
    ]);
    expect(lines.join('\n')).toMatch(/resume refused: .*lease/);
  });
});
