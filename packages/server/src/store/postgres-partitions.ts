// Monthly range partitions of `events`: names, bounds, and which months a batch needs.

/** A month's partition: `events_p202605` holds [2026-05-01, 2026-06-01) UTC. */
export interface MonthPartition {
  readonly name: string;
  readonly from: string;
  readonly to: string;
}

/** The partition holding time `ms`. */
export function partitionFor(ms: number): MonthPartition {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  const from = new Date(Date.UTC(y, m, 1));
  const to = new Date(Date.UTC(y, m + 1, 1));
  return {
    name: `events_p${String(y).padStart(4, '0')}${String(m + 1).padStart(2, '0')}`,
    from: from.toISOString(),
    to: to.toISOString(),
  };
}

/** The partition named `name`, or undefined when it is not one of ours. */
export function partitionNamed(name: string): MonthPartition | undefined {
  const m = /^events_p(\d{4})(\d{2})$/.exec(name);
  if (!m) return undefined;
  const month = Number(m[2]);
  if (month < 1 || month > 12) return undefined;
  return partitionFor(Date.UTC(Number(m[1]), month - 1, 1));
}

/** The distinct partitions that times `ms` fall into, plus this month and the next (made ahead). */
export function partitionsNeeded(times: Iterable<number>, nowMs?: number): MonthPartition[] {
  const out = new Map<string, MonthPartition>();
  // A month's partition is made once per call, however many times fall into it (a check-in
  // group brings hundreds of events, nearly all of one month).
  const months = new Set<number>();
  const add = (ms: number): void => {
    const d = new Date(ms);
    const month = d.getUTCFullYear() * 12 + d.getUTCMonth();
    if (months.has(month)) return;
    months.add(month);
    const p = partitionFor(ms);
    out.set(p.name, p);
  };
  for (const t of times) add(t);
  if (nowMs !== undefined) {
    add(nowMs);
    const d = new Date(nowMs);
    add(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1));
  }
  return [...out.values()];
}
