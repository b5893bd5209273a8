// What bench/server.mjs and bench/server-pg-checkin.mjs share: one check-in's events (the same
// 10 events, so both measure the same rows) and the CPU time of processes from /proc.
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';

/** CPU time (ms, user + system) of processes, from /proc; a process that is gone counts 0. */
export async function cpuMs(pids) {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // gone
    }
  }
  return ticks * 10; // USER_HZ is 100 on Linux
}

/** One check-in's 10 events from the device `deviceId`, timed the minute before `now`. */
export function checkInEvents(deviceId, now) {
  const list = [];
  for (let i = 0; i < 10; i++) {
    const kind = i % 5;
    list.push({
      id: randomUUID(),
      type: kind < 3 ? 'session.transition' : kind < 4 ? 'policy.decision' : 'sync.progress',
      at: new Date(now - (10 - i) * 6000).toISOString(),
      workspace: 'quickstart',
      session: `quickstart-${deviceId.slice(0, 6)}`,
      data:
        kind < 3
          ? { from: 'stopped', to: 'running', operation: 'start', vm: 'tandem-quickstart' }
          : kind < 4
            ? {
                kind: 'url',
                subject: `https://intranet.example.org/app/${i}`,
                outcome: 'guest',
                rule: '*.example.org',
                layer: 'machine-policy',
                reason: 'matched a guest rule',
              }
            : { workspace: 'quickstart', version: '1.0.0', fetchedBytes: 65536 * i, totalBytes: 10485760 },
    });
  }
  return list;
}
