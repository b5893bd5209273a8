import type { Clock } from '../clock.js';
import { InvalidInputError } from '../errors.js';
import { formatDuration, parseDuration } from '../util/duration.js';
import {
  resolveSetting,
  settingRef,
  sourceName,
  type ApplicableEntry,
  type MergeRules,
  type Sourced,
} from './layers.js';
import type { DecisionLayer, PolicyDecisionBase, RuleRef } from './types.js';

/** What a session does when it ends. */
export type SessionEndAction = 'snapshot' | 'shutdown' | 'suspend' | 'revert';

/** The usage settings in force for a subject, each with where it came from. */
export interface UsageSettings {
  readonly expiresAt?: Sourced<string>;
  readonly offlineAllowed: Sourced<boolean>;
  readonly offlineMaxDuration?: Sourced<string>;
  readonly idleLock?: Sourced<string>;
  readonly lockOnHostSleep: Sourced<boolean>;
  readonly mode: Sourced<'persistent' | 'revertible'>;
  readonly onSessionEnd: Sourced<SessionEndAction>;
}

/** What the caller knows about now. Instants are ms since the epoch, Dates or ISO strings. */
export interface UsageState {
  /** Is the endpoint online (the management server reachable) right now? */
  readonly online: boolean;
  /** When the last successful online check was. */
  readonly lastOnlineCheckAt?: number | Date | string;
  /** When the user last did something in the session (for the idle lock). */
  readonly lastActivityAt?: number | Date | string;
}

/** One check a usage decision made. */
export interface UsageCheck {
  readonly check: 'expiry' | 'offline' | 'idle-lock';
  readonly ok: boolean;
  readonly reason: string;
  readonly setting?: RuleRef;
}

/** A usage decision: may the workspace run now, and for how long. */
export interface UsageDecision extends PolicyDecisionBase {
  readonly kind: 'usage';
  readonly outcome: 'allow' | 'deny';
  /** The clock's time, ISO 8601. */
  readonly now: string;
  /** Milliseconds until the workspace expires; null when it never does. */
  readonly expiresInMs: number | null;
  /** Milliseconds of offline use left; null when online or unlimited. */
  readonly offlineRemainingMs: number | null;
  /** The idle lock delay; null when there is none. */
  readonly idleLockMs: number | null;
  /** Milliseconds until the idle lock; null without an idle lock or `lastActivityAt`. 0: lock now. */
  readonly idleLockInMs: number | null;
  readonly lockOnHostSleep: boolean;
  readonly mode: 'persistent' | 'revertible';
  readonly onSessionEnd: SessionEndAction;
  /** Milliseconds until this decision can change (expiry or offline limit); null: not by time. */
  readonly validForMs: number | null;
  readonly checks: readonly UsageCheck[];
  readonly settings: UsageSettings;
}

const SESSION_END_PERMISSIVENESS: Record<SessionEndAction, number> = {
  revert: 0,
  shutdown: 1,
  snapshot: 2,
  suspend: 3,
};
const BUILT_IN = { layer: 'built-in', source: 'Tandem', path: '', appliesTo: 'everyone' } as const;

/** Resolves the usage settings across layers with the usage merge rule. */
export function resolveUsage(applicable: readonly ApplicableEntry[], merge: MergeRules['usage']): UsageSettings {
  const duration = (d: string): number => parseDuration(d);
  const expiresAt = resolveSetting(
    applicable,
    (d) => d.usage?.expiresAt,
    'usage.expiresAt',
    merge,
    (v) => Date.parse(v),
  );
  const offlineMaxDuration = resolveSetting(
    applicable,
    (d) => d.usage?.offline?.maxDuration,
    'usage.offline.maxDuration',
    merge,
    duration,
  );
  const idleLock = resolveSetting(applicable, (d) => d.usage?.idleLock, 'usage.idleLock', merge, duration);
  return {
    ...(expiresAt ? { expiresAt } : {}),
    offlineAllowed: resolveSetting(
      applicable,
      (d) => d.usage?.offline?.allowed,
      'usage.offline.allowed',
      merge,
      (v) => (v ? 1 : 0),
    ) ?? { ...BUILT_IN, value: true },
    ...(offlineMaxDuration ? { offlineMaxDuration } : {}),
    ...(idleLock ? { idleLock } : {}),
    lockOnHostSleep: resolveSetting(
      applicable,
      (d) => d.usage?.lockOnHostSleep,
      'usage.lockOnHostSleep',
      merge,
      (v) => (v ? 0 : 1),
    ) ?? { ...BUILT_IN, value: true },
    mode: resolveSetting(
      applicable,
      (d) => d.usage?.mode,
      'usage.mode',
      merge,
      (v) => (v === 'persistent' ? 1 : 0),
    ) ?? { ...BUILT_IN, value: 'persistent' },
    onSessionEnd: resolveSetting(
      applicable,
      (d) => d.usage?.onSessionEnd,
      'usage.onSessionEnd',
      merge,
      (v) => SESSION_END_PERMISSIVENESS[v],
    ) ?? {
      ...BUILT_IN,
      value: 'shutdown',
    },
  };
}

function instant(value: number | Date | string, name: string): number {
  const ms = typeof value === 'number' ? value : typeof value === 'string' ? Date.parse(value) : value.getTime();
  if (!Number.isFinite(ms)) {
    throw new InvalidInputError(
      `${name} ${JSON.stringify(value)} is not an instant: expected an ISO 8601 time such as 2026-05-01T12:00:00Z.`,
      {
        details: { [name]: value },
      },
    );
  }
  return ms;
}

const at = (s: Sourced<unknown>): string =>
  s.layer === 'built-in' ? "Tandem's default" : `${s.path} in ${s.layer} (${sourceName(s.source)})`;

/**
 * Decides whether the workspace may run now, with the injected clock: not past its expiry, and
 * if offline, offline use allowed and the last online check recent enough. Reports the time left
 * on each limit, the idle lock, and what happens at session end.
 *
 * @example
 * ```ts
 * const d = engine.forSubject({ user: 'alice' }).decideUsage({ online: false, lastOnlineCheckAt: '2026-05-01T00:00:00Z' });
 * if (d.outcome === 'deny') console.log(d.reason);
 * else console.log(`offline for ${d.offlineRemainingMs} ms more`);
 * ```
 */
export function evaluateUsage(settings: UsageSettings, state: UsageState, clock: Pick<Clock, 'now'>): UsageDecision {
  const now = clock.now();
  const checks: UsageCheck[] = [];
  let expiresInMs: number | null = null;
  let offlineRemainingMs: number | null = null;
  const add = (check: UsageCheck['check'], ok: boolean, reason: string, s?: Sourced<unknown>, text?: string): void => {
    const setting = s ? settingRef(s, text ?? '') : undefined;
    checks.push({ check, ok, reason, ...(setting ? { setting } : {}) });
  };
  if (settings.expiresAt) {
    const s = settings.expiresAt;
    expiresInMs = Date.parse(s.value) - now;
    const ok = expiresInMs > 0;
    add(
      'expiry',
      ok,
      ok ? `expires at ${s.value} (${at(s)}), in ${formatDuration(expiresInMs)}` : `expired at ${s.value} (${at(s)})`,
      s,
      `expiresAt ${s.value}`,
    );
  }
  if (!state.online) {
    const allowed = settings.offlineAllowed;
    if (!allowed.value) {
      add(
        'offline',
        false,
        `offline use is not allowed (${at(allowed)}); connect to the network to start`,
        allowed,
        'offline.allowed false',
      );
    } else if (settings.offlineMaxDuration) {
      const s = settings.offlineMaxDuration;
      const max = parseDuration(s.value);
      if (state.lastOnlineCheckAt === undefined) {
        offlineRemainingMs = 0;
        add(
          'offline',
          false,
          `offline use is limited to ${s.value} (${at(s)}) and there was never an online check; connect once`,
          s,
          `offline.maxDuration ${s.value}`,
        );
      } else {
        const last = instant(state.lastOnlineCheckAt, 'lastOnlineCheckAt');
        offlineRemainingMs = last + max - now;
        const ok = offlineRemainingMs > 0;
        add(
          'offline',
          ok,
          ok
            ? `offline for ${formatDuration(now - last)} of ${s.value} allowed (${at(s)}): ${formatDuration(offlineRemainingMs)} left`
            : `offline for ${formatDuration(now - last)}, over the ${s.value} allowed (${at(s)}); connect to the network to start`,
          s,
          `offline.maxDuration ${s.value}`,
        );
      }
    } else {
      add(
        'offline',
        true,
        `offline use is allowed without a time limit (${at(allowed)})`,
        allowed,
        'offline.allowed true',
      );
    }
  }
  const idleLockMs = settings.idleLock ? parseDuration(settings.idleLock.value) : null;
  let idleLockInMs: number | null = null;
  if (idleLockMs !== null && state.lastActivityAt !== undefined && settings.idleLock) {
    idleLockInMs = Math.max(0, instant(state.lastActivityAt, 'lastActivityAt') + idleLockMs - now);
    add(
      'idle-lock',
      true,
      idleLockInMs === 0
        ? `idle for ${settings.idleLock.value} or more: lock now`
        : `idle lock in ${formatDuration(idleLockInMs)}`,
      settings.idleLock,
      `idleLock ${settings.idleLock.value}`,
    );
  }
  const failed = checks.find((c) => !c.ok);
  const limits = [expiresInMs, offlineRemainingMs].filter((v): v is number => v !== null);
  const validForMs = limits.length > 0 ? Math.max(0, Math.min(...limits)) : null;
  // The deciding setting: the one that failed, else the limit that ends soonest.
  const remaining = (c: UsageCheck): number =>
    (c.check === 'expiry' ? expiresInMs : c.check === 'offline' ? offlineRemainingMs : null) ??
    Number.POSITIVE_INFINITY;
  const binding =
    failed ??
    checks
      .filter((c) => c.check !== 'idle-lock' && c.setting)
      .sort((a, b) => Math.sign(remaining(a) - remaining(b)) || 0)[0];
  const layer: DecisionLayer = binding?.setting?.layer ?? 'built-in';
  const reason = failed
    ? `deny: ${failed.reason}`
    : `allow: ${
        checks
          .filter((c) => c.check !== 'idle-lock')
          .map((c) => c.reason)
          .join('; ') || 'no expiry and no offline limit apply'
      }`;
  return {
    kind: 'usage',
    outcome: failed ? 'deny' : 'allow',
    layer,
    ...(binding?.setting ? { rule: binding.setting } : {}),
    reason,
    now: new Date(now).toISOString(),
    expiresInMs: expiresInMs === null ? null : Math.max(0, expiresInMs),
    offlineRemainingMs: offlineRemainingMs === null ? null : Math.max(0, offlineRemainingMs),
    idleLockMs,
    idleLockInMs,
    lockOnHostSleep: settings.lockOnHostSleep.value,
    mode: settings.mode.value,
    onSessionEnd: settings.onSessionEnd.value,
    validForMs,
    checks,
    settings,
  };
}
