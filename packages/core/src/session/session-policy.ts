import { systemClock, type Clock } from '../clock.js';
import { PolicyDeniedError } from '../errors.js';
import { PolicyEngine } from '../policy/engine.js';
import type { PolicyLayerInput } from '../policy/layers.js';
import type { PolicySubject } from '../policy/types.js';
import type { SessionEndAction, UsageDecision, UsageSettings, UsageState } from '../policy/usage.js';
import type { Workspace } from '../workspace/schema.js';

/** Where a {@link SessionPolicy} gets its policy from. */
export interface SessionPolicyOptions {
  /**
   * An engine built for the session's workspace (from `loadPolicy`, say). Default: one built from
   * the workspace and `layers`.
   */
  readonly engine?: PolicyEngine;
  /** Policy layers above the workspace file's own (machine policy, user policy, local settings). */
  readonly layers?: readonly PolicyLayerInput[];
  /** Where the workspace came from, shown in decisions (default `workspace <name>`). */
  readonly workspaceSource?: string;
  /** Whom the session is for: the user and their groups (assignments in layers match on them). */
  readonly subject?: PolicySubject;
  /**
   * Connectivity as the caller knows it, read at every check. Default: online, so the offline
   * limit never applies; an agent that knows better says so.
   */
  readonly usageState?: () => UsageState;
  /** The clock expiry and the offline limit are read with. Default: the system clock. */
  readonly clock?: Pick<Clock, 'now'>;
}

/**
 * What a session enforces, from the layered usage policy: the workspace file's `usage` merged
 * with the policy layers above it as the {@link PolicyEngine} merges them (the highest layer that
 * sets a setting wins; see docs/policy.md). It decides the idle lock, whether to lock on host
 * sleep, the end-of-session action, and whether the workspace may start now (expiry, offline
 * limit). Sessions, {@link IdleLock} and {@link SessionManager} use one by default.
 *
 * @example
 * ```ts
 * const policy = SessionPolicy.for(workspace, {
 *   layers: [{ layer: 'machine-policy', policy: { usage: { idleLock: 'PT1M', onSessionEnd: 'shutdown' } } }],
 * });
 * policy.idleLockMs; // 60000
 * policy.endAction; // 'shutdown'
 * policy.assertMayStart(); // throws PolicyDeniedError once the workspace has expired
 * ```
 */
export class SessionPolicy {
  /** The engine the decisions come from. */
  readonly engine: PolicyEngine;
  /** Whom the decisions are for. */
  readonly subject: PolicySubject;
  readonly #usageState: () => UsageState;
  readonly #clock: Pick<Clock, 'now'>;

  private constructor(engine: PolicyEngine, options: SessionPolicyOptions) {
    this.engine = engine;
    this.subject = options.subject ?? {};
    this.#usageState = options.usageState ?? (() => ({ online: true }));
    this.#clock = options.clock ?? systemClock;
  }

  /** The policy a session of `workspace` enforces. */
  static for(workspace: Workspace, options: SessionPolicyOptions = {}): SessionPolicy {
    const engine =
      options.engine ??
      new PolicyEngine({
        workspace,
        ...(options.workspaceSource !== undefined ? { workspaceSource: options.workspaceSource } : {}),
        ...(options.layers ? { layers: options.layers } : {}),
      });
    return new SessionPolicy(engine, options);
  }

  /** The usage settings in force, each with the layer and path it came from. */
  get settings(): UsageSettings {
    return this.engine.forSubject(this.subject).usage;
  }

  /** The idle lock delay in milliseconds; null when no layer sets one. */
  get idleLockMs(): number | null {
    return this.decide().idleLockMs;
  }

  /** Lock when the host goes to sleep. */
  get lockOnHostSleep(): boolean {
    return this.settings.lockOnHostSleep.value;
  }

  /**
   * What the session does when it ends: `usage.onSessionEnd`, except that a revertible workspace
   * (`usage.mode: revertible`) always reverts to its baseline.
   */
  get endAction(): SessionEndAction {
    const s = this.settings;
    return s.mode.value === 'revertible' ? 'revert' : s.onSessionEnd.value;
  }

  /** The usage decision now: expiry, offline limit, idle lock, end action, each explained. */
  decide(state: Partial<UsageState> = {}): UsageDecision {
    return this.engine.forSubject(this.subject).decideUsage({ ...this.#usageState(), ...state }, this.#clock);
  }

  /**
   * Throws PolicyDeniedError when the workspace may not start now (expired, or offline for too
   * long). The error names the rule and the layer that decided and carries the decision as
   * `details.decision`. Returns the decision otherwise.
   */
  assertMayStart(state: Partial<UsageState> = {}): UsageDecision {
    const decision = this.decide(state);
    if (decision.outcome === 'deny') {
      const failed = decision.checks.find((c) => !c.ok);
      const fix =
        failed?.check === 'expiry'
          ? 'Install a newer version of the workspace or ask its administrator to extend it.'
          : 'Connect to the network so the workspace can check in, then start it again.';
      throw new PolicyDeniedError(
        `Workspace "${this.engine.workspace.metadata.name}" may not start: ${failed?.reason ?? decision.reason}. ${fix}`,
        {
          details: {
            workspace: this.engine.workspace.metadata.name,
            check: failed?.check,
            layer: decision.layer,
            rule: decision.rule,
            decision,
          },
        },
      );
    }
    return decision;
  }
}
