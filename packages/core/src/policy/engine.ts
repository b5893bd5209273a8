import { systemClock, type Clock } from '../clock.js';
import { InvalidInputError } from '../errors.js';
import type { Workspace } from '../workspace/schema.js';
import {
  applicableEntries,
  buildEntries,
  effectiveMergeRules,
  type ApplicableEntry,
  type MergeRules,
  type PolicyEntry,
  type PolicyLayerInput,
} from './layers.js';
import { decideProvisioning, type ProvisioningDecision } from './provisioning.js';
import { importEnterpriseSiteList, type UnmappedSite } from './site-list.js';
import { decideTransfer, type TransferDecision, type TransferRequest } from './transfer.js';
import type { PolicySubject, Side } from './types.js';
import { compileUrlRule, describeUrlRule, type CompiledUrlRule } from './url-rules.js';
import { evaluateUsage, resolveUsage, type UsageDecision, type UsageSettings, type UsageState } from './usage.js';
import { buildWebRedirection, decideUrl, type UrlDecision, type WebRedirection } from './web-redirection.js';

/** How many compiled matchers (one per distinct set of applicable policy documents) are kept. */
const MATCHER_CACHE = 64;

/** Any explained decision. */
export type PolicyDecision = UrlDecision | TransferDecision | UsageDecision | ProvisioningDecision;

/** A question for {@link PolicyEngine.explain}. */
export type PolicyQuestion =
  | { readonly url: string; readonly from?: Side }
  | { readonly transfer: TransferRequest }
  | { readonly usage: UsageState }
  | { readonly provisioning: true };

/** What a policy engine is built from. */
export interface PolicyEngineOptions {
  /** The workspace: its policy is the package default, the lowest layer. */
  readonly workspace: Workspace;
  /** Where the workspace came from, shown in decisions. Default: `workspace <name>`. */
  readonly workspaceSource?: string;
  /** Layers above the package default, in any order; each names its layer. */
  readonly layers?: readonly PolicyLayerInput[];
  /**
   * The text of each Enterprise Mode Site List a document references, keyed by the reference as
   * written (`enterpriseSiteList: sites.xml` is looked up as `sites.xml`). loadPolicy fills this in.
   */
  readonly siteLists?: Readonly<Record<string, string>>;
  /** The clock usage decisions read. Default: the system clock. */
  readonly clock?: Pick<Clock, 'now'>;
}

/** What importing one referenced site list gave. */
export interface SiteListReport {
  readonly reference: string;
  /** The document that references it: `machine.policy.yaml policy`. */
  readonly referencedBy: string;
  readonly version?: string;
  readonly imported: number;
  readonly unmapped: readonly UnmappedSite[];
}

/**
 * The policy engine: pure and synchronous. It holds the workspace's own policy and the layers
 * above it, and answers, for a user and their groups, where a URL opens, whether a transfer is
 * allowed, whether the workspace may run now, and whether the user gets it at all, each decision
 * naming the rule and the layer that decided. It emits nothing: callers that enforce a decision
 * emit `policy.decision` (see {@link toDecisionEvent}).
 *
 * @example
 * ```ts
 * const engine = new PolicyEngine({ workspace });
 * const alice = engine.forSubject({ user: 'alice', groups: ['ERP Users'] });
 * const d = alice.decideUrl('http://erp.intranet.example/');
 * console.log(d.target, d.reason);
 * ```
 */
export class PolicyEngine {
  /** The per-policy merge rules in force. */
  readonly mergeRules: MergeRules;
  /** What importing the referenced site lists gave, unmapped entries included. */
  readonly siteLists: readonly SiteListReport[];
  readonly workspace: Workspace;
  readonly #entries: PolicyEntry[];
  readonly #rules = new Map<PolicyEntry, CompiledUrlRule[]>();
  readonly #web = new Map<string, WebRedirection>();
  readonly #clock: Pick<Clock, 'now'>;

  constructor(options: PolicyEngineOptions) {
    this.workspace = options.workspace;
    this.#clock = options.clock ?? systemClock;
    this.#entries = buildEntries(
      options.workspace,
      options.workspaceSource ?? `workspace ${options.workspace.metadata.name}`,
      options.layers ?? [],
    );
    this.mergeRules = effectiveMergeRules(this.#entries);
    const reports: SiteListReport[] = [];
    for (const entry of this.#entries)
      this.#rules.set(entry, this.#compileEntry(entry, options.siteLists ?? {}, reports));
    this.siteLists = reports;
  }

  #compileEntry(
    entry: PolicyEntry,
    siteLists: Readonly<Record<string, string>>,
    reports: SiteListReport[],
  ): CompiledUrlRule[] {
    const web = entry.doc.webRedirection;
    if (web === undefined) return [];
    const base = `${entry.basePath}.webRedirection`;
    const ref = (path: string, id: string | undefined, text: string): CompiledUrlRule['ref'] => ({
      layer: entry.layer,
      source: entry.source,
      path,
      ...(id !== undefined ? { id } : {}),
      label: id ?? path,
      text,
      appliesTo: entry.audience === undefined ? 'everyone' : 'assigned users and groups',
    });
    const rules = (web.rules ?? []).map((rule, i) => {
      const path = `${base}.rules[${i}]`;
      try {
        return compileUrlRule(rule, ref(path, rule.id, describeUrlRule(rule)));
      } catch (err) {
        throw new InvalidInputError(`${entry.source}: ${path}: ${(err as Error).message}`, {
          cause: err,
          details: { file: entry.source, path },
        });
      }
    });
    const reference = web.enterpriseSiteList;
    if (reference !== undefined) {
      const xml = siteLists[reference];
      if (xml === undefined) {
        throw new InvalidInputError(
          `${entry.source}: ${base}.enterpriseSiteList: the site list "${reference}" was not provided; load the policy with loadPolicy(), or pass its text in the siteLists option.`,
          { details: { file: entry.source, path: `${base}.enterpriseSiteList`, reference } },
        );
      }
      const imported = importEnterpriseSiteList(xml, { source: reference });
      imported.sites.forEach((site) => {
        const label = `${reference}:${site.line}`;
        rules.push(
          compileUrlRule(site.rule, {
            ...ref(`${base}.enterpriseSiteList`, undefined, ''),
            label,
            text: `site ${site.url} open-in ${site.openIn} -> ${site.rule.target}`,
          }),
        );
      });
      reports.push({
        reference,
        referencedBy: `${entry.source} ${entry.basePath}`,
        ...(imported.version !== undefined ? { version: imported.version } : {}),
        imported: imported.sites.length,
        unmapped: imported.unmapped,
      });
    }
    return rules;
  }

  /**
   * The policy for one user and their groups. The compiled URL matcher is shared by every
   * subject to whom the same policy documents apply.
   */
  forSubject(subject: PolicySubject = {}): SubjectPolicy {
    const applicable = applicableEntries(this.#entries, subject);
    const key = applicable.map((a) => `${this.#entries.indexOf(a.entry)}:${a.appliesTo}`).join('\n');
    let web = this.#web.get(key);
    if (web === undefined) {
      web = buildWebRedirection(applicable, this.mergeRules.webRedirection, (e) => this.#rules.get(e) ?? []);
      // A server deciding for many users keeps the most recent matchers, not one per user forever.
      if (this.#web.size >= MATCHER_CACHE) this.#web.delete(this.#web.keys().next().value ?? '');
      this.#web.set(key, web);
    } else {
      this.#web.delete(key);
      this.#web.set(key, web);
    }
    return new SubjectPolicy(subject, applicable, this.mergeRules, this.workspace.metadata.name, this.#clock, web);
  }

  /** Answers one question for one subject. */
  explain(subject: PolicySubject, question: PolicyQuestion): PolicyDecision {
    const p = this.forSubject(subject);
    if ('url' in question) return p.decideUrl(question.url, { from: question.from ?? 'host' });
    if ('transfer' in question) return p.decideTransfer(question.transfer);
    if ('usage' in question) return p.decideUsage(question.usage);
    return p.decideProvisioning();
  }
}

/** The policy in force for one subject. Get one from {@link PolicyEngine.forSubject}. */
export class SubjectPolicy {
  /** The usage settings in force, each with where it came from. */
  readonly usage: UsageSettings;

  constructor(
    readonly subject: PolicySubject,
    /** The policy documents that apply, highest precedence first. */
    readonly applicable: readonly ApplicableEntry[],
    readonly mergeRules: MergeRules,
    readonly workspaceName: string,
    private readonly clock: Pick<Clock, 'now'>,
    /** The web redirection in force. */
    readonly web: WebRedirection,
  ) {
    this.usage = resolveUsage(applicable, mergeRules.usage);
  }

  /**
   * Where a URL opened on `from` (default the host) opens. Throws InvalidInputError for a URL
   * that cannot be parsed; it is never redirected.
   */
  decideUrl(url: string | URL, options: { from?: Side } = {}): UrlDecision {
    return decideUrl(this.web, url, options.from ?? 'host');
  }

  /** Whether a data transfer is allowed, denied, or must be asked (see docs/policy.md). */
  decideTransfer(request: TransferRequest): TransferDecision {
    return decideTransfer(this.applicable, request, this.mergeRules.dataTransfer);
  }

  /** Whether the workspace may run now, by the engine's clock (or `clock`), and the time left. */
  decideUsage(state: UsageState, clock: Pick<Clock, 'now'> = this.clock): UsageDecision {
    return evaluateUsage(this.usage, state, clock);
  }

  /** Whether this subject gets the workspace at all. */
  decideProvisioning(): ProvisioningDecision {
    return decideProvisioning(this.applicable, this.subject, this.workspaceName);
  }
}
