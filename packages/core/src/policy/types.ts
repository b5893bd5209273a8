/**
 * The policy layers, highest precedence first, as MED-V v2 read them: machine policy, then
 * user policy, then machine and user local settings, then the workspace package's own default.
 */
export const POLICY_LAYERS = [
  'machine-policy',
  'user-policy',
  'machine-local',
  'user-local',
  'package-default',
] as const;

/** One of {@link POLICY_LAYERS}. */
export type PolicyLayerName = (typeof POLICY_LAYERS)[number];

/** The layer a decision came from; `built-in` is Tandem's own default (deny, no redirection). */
export type DecisionLayer = PolicyLayerName | 'built-in';

/** A side of the desktop: the user's own system, or the workspace VM. */
export type Side = 'host' | 'guest';

/** Which way something crosses between host and guest. */
export type CrossingDirection = 'host-to-guest' | 'guest-to-host';

/** Who a decision is for. Groups are names or DNs, nested groups already resolved. */
export interface PolicySubject {
  readonly user?: string;
  readonly groups?: readonly string[];
}

/** Names the rule that decided and where it was written. */
export interface RuleRef {
  readonly layer: PolicyLayerName;
  /** The file or object the rule came from (`tandem.workspace.yaml`, `machine.policy.yaml`). */
  readonly source: string;
  /** Where inside the source: `spec.webRedirection.rules[2]`, `assignments[0].policy.dataTransfer[1]`. */
  readonly path: string;
  /** The rule's own `id`, when it has one. */
  readonly id?: string;
  /** The rule's `id`, else its path: what to show a person. */
  readonly label: string;
  /** The rule in words: `domainSuffix intranet.example -> guest`. */
  readonly text: string;
  /** Whom the rule applies to: `everyone`, `user alice`, `group ERP Users`. */
  readonly appliesTo: string;
}

/** What every decision carries. */
export interface PolicyDecisionBase {
  readonly kind: 'url' | 'transfer' | 'usage' | 'provisioning';
  /** The outcome: a target (`host`, `guest`) or `allow`, `deny`, `ask`. */
  readonly outcome: string;
  /** The layer that decided. */
  readonly layer: DecisionLayer;
  /** The rule that decided; absent when a default decided. */
  readonly rule?: RuleRef;
  /** Why, in one sentence. */
  readonly reason: string;
}
