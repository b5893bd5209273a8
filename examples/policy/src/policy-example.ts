import { fileURLToPath } from 'node:url';
import { EventBus, formatDuration, VirtualClock } from '@tandem/core';
// The policy engine alone: this entry loads no delivery, session or host code.
import {
  formatDecision,
  loadPolicy,
  runPolicyTestFile,
  toDecisionEvent,
  type PolicyDecision,
  type PolicyTestResult,
} from '@tandem/core/policy';

const here = (name: string): string => fileURLToPath(new URL(`../${name}`, import.meta.url));

/** What the example decided, for its test. */
export interface PolicyExampleResult {
  readonly decisions: readonly PolicyDecision[];
  readonly tests: readonly PolicyTestResult[];
  readonly events: number;
}

/**
 * Loads the example workspace with a machine policy and a user policy above it, decides a few
 * questions for one user, and runs the table of expected decisions.
 */
export async function runPolicyExample(print: (line: string) => void = console.log): Promise<PolicyExampleResult> {
  // Usage decisions read an injected clock; a virtual one makes the example repeatable.
  const clock = new VirtualClock(Date.parse('2026-09-01T09:00:00Z'));
  const { engine } = await loadPolicy({
    workspaceFile: here('tandem.workspace.yaml'),
    layerFiles: [here('machine.policy.yaml'), here('user.policy.yaml')],
    clock,
  });
  for (const list of engine.siteLists) {
    print(`Imported ${list.imported} sites from ${list.reference}; ${list.unmapped.length} could not be mapped:`);
    for (const u of list.unmapped) print(`  line ${u.line}: ${u.url}: ${u.reason}`);
  }
  print(`Merge rules: ${JSON.stringify(engine.mergeRules)}\n`);

  const alice = engine.forSubject({
    user: 'alice',
    groups: ['CN=ERP Users,OU=Groups,DC=corp,DC=example', 'CN=Finance,OU=Groups,DC=corp,DC=example'],
  });
  const decisions: PolicyDecision[] = [
    alice.decideUrl('HTTP://ERP.Intranet.Example./orders?id=7'),
    alice.decideUrl('https://portal.finance.example/'),
    alice.decideUrl('https://www.example.org/news', { from: 'guest' }),
    alice.decideTransfer({ channel: 'clipboard', direction: 'guest-to-host', contentType: 'image' }),
    alice.decideTransfer({ channel: 'usb', direction: 'host-to-guest' }),
    alice.decideUsage({
      online: false,
      lastOnlineCheckAt: '2026-08-31T09:00:00Z',
      lastActivityAt: '2026-09-01T08:55:00Z',
    }),
    alice.decideProvisioning(),
  ];
  for (const d of decisions) print(`${formatDecision(d).join('\n')}\n`);

  // Time passes on the injected clock: the offline allowance (3 days for Finance) runs out.
  await clock.advance(2 * 24 * 3_600_000);
  const later = alice.decideUsage({ online: false, lastOnlineCheckAt: '2026-08-31T09:00:00Z' });
  const first = decisions[5];
  if (first?.kind === 'usage' && first.offlineRemainingMs !== null)
    print(`Offline time left at 09:00: ${formatDuration(first.offlineRemainingMs)}`);
  print(`Two days later, offline: ${later.outcome} (${later.reason})`);
  decisions.push(later);

  // The engine emits nothing; the code that enforces a decision records it.
  const bus = new EventBus({ clock });
  let events = 0;
  bus.on('policy.decision', () => events++);
  for (const d of decisions)
    bus.publish('policy.decision', toDecisionEvent(d), { workspace: engine.workspace.metadata.name });

  const { results } = await runPolicyTestFile(here('policy.test.yaml'));
  const passed = results.filter((r) => r.passed).length;
  print(`\npolicy.test.yaml: ${passed} of ${results.length} cases decided as expected`);
  for (const r of results.filter((x) => !x.passed)) print(`  not as expected: ${r.name}: ${r.failures.join('; ')}`);
  return { decisions, tests: results, events };
}
