import type { Command } from 'commander';
import {
  InvalidInputError,
  NotFoundError,
  formatDecision,
  loadPolicy,
  runPolicyTestFile,
  type PolicyDecision,
  type PolicyQuestion,
  type SiteListReport,
} from '@tandem/core';
import type { CliContext } from '../context.js';
import { ExitCode } from '../exit-codes.js';
import type { CommandHost } from '../program.js';
import { callAdmin } from './admin-remote.js';

interface ExplainOptions {
  layer: string[];
  user?: string;
  group: string[];
  url?: string;
  from?: string;
  transfer?: string;
  direction?: string;
  contentType?: string;
  size?: string;
  usage?: boolean;
  now?: string;
  offline?: boolean;
  lastOnline?: string;
  lastActivity?: string;
  provisioning?: boolean;
  server?: string;
  device?: string;
  adminTokenFile?: string;
  ca?: string;
  dir?: string;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

function instant(value: string | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (!Number.isFinite(ms)) {
    throw new InvalidInputError(
      `${option} ${JSON.stringify(value)} is not a time: expected ISO 8601 such as 2026-05-01T12:00:00Z.`,
      {
        details: { option, value },
      },
    );
  }
  return ms;
}

function question(o: ExplainOptions): PolicyQuestion {
  const asked = [o.url !== undefined, o.transfer !== undefined, o.usage === true, o.provisioning === true].filter(
    Boolean,
  ).length;
  if (asked !== 1) {
    throw new InvalidInputError(
      'Ask exactly one question: --url URL, --transfer CHANNEL --direction DIR, --usage, or --provisioning.',
      {
        details: { asked },
      },
    );
  }
  if (o.url !== undefined) {
    const from = o.from ?? 'host';
    if (from !== 'host' && from !== 'guest')
      throw new InvalidInputError(`--from "${from}" is not a side: expected host or guest.`, { details: { from } });
    return { url: o.url, from };
  }
  if (o.transfer !== undefined) {
    if (o.direction === undefined)
      throw new InvalidInputError('--transfer needs --direction host-to-guest or guest-to-host.', { details: {} });
    const size = o.size === undefined ? undefined : Number(o.size);
    if (size !== undefined && !(Number.isInteger(size) && size >= 0)) {
      throw new InvalidInputError(`--size "${o.size}" is not a size: expected a whole number of bytes.`, {
        details: { size: o.size },
      });
    }
    return {
      transfer: {
        channel: o.transfer,
        direction: o.direction as 'host-to-guest',
        ...(o.contentType !== undefined ? { contentType: o.contentType as 'text' } : {}),
        ...(size !== undefined ? { sizeBytes: size } : {}),
      },
    };
  }
  if (o.usage) {
    const lastOnlineCheckAt = instant(o.lastOnline, '--last-online');
    const lastActivityAt = instant(o.lastActivity, '--last-activity');
    return {
      usage: {
        online: o.offline !== true,
        ...(lastOnlineCheckAt !== undefined ? { lastOnlineCheckAt } : {}),
        ...(lastActivityAt !== undefined ? { lastActivityAt } : {}),
      },
    };
  }
  return { provisioning: true };
}

function reportSiteLists(ctx: CliContext, reports: readonly SiteListReport[]): void {
  for (const r of reports) {
    ctx.info(`site list ${r.reference}: ${r.imported} sites imported, ${r.unmapped.length} not mapped`);
    for (const u of r.unmapped) ctx.info(`  ${r.reference}:${u.line}: ${u.url || '(no url)'}: ${u.reason}`);
  }
}

/**
 * `tandem policy explain --server URL WORKSPACE ...`: the same question, decided by the server's
 * view (the assignment of WORKSPACE that covers the user, with its policy layers, and the user's
 * groups from the server's directory), printed as the local command prints a decision.
 */
async function explainOnServer(ctx: CliContext, workspace: string, q: PolicyQuestion, opts: ExplainOptions) {
  if (opts.group.length > 0 || opts.layer.length > 0)
    throw new InvalidInputError(
      '--group and --layer are not taken with --server: the server knows the groups and the layers.',
      { details: {} },
    );
  if (opts.user === undefined && opts.device === undefined)
    throw new InvalidInputError('--server needs --user NAME or --device ID.', { details: {} });
  if (opts.now !== undefined)
    throw new InvalidInputError('--now is not taken with --server: the server decides as of its time.', {
      details: {},
    });
  const question =
    'usage' in q
      ? {
          usage: {
            online: q.usage.online,
            ...(q.usage.lastOnlineCheckAt !== undefined
              ? { lastOnlineCheckAt: new Date(q.usage.lastOnlineCheckAt).toISOString() }
              : {}),
            ...(q.usage.lastActivityAt !== undefined
              ? { lastActivityAt: new Date(q.usage.lastActivityAt).toISOString() }
              : {}),
          },
        }
      : q;
  const reply = (await callAdmin(
    ctx,
    { server: opts.server ?? '', adminTokenFile: opts.adminTokenFile, ca: opts.ca, dir: opts.dir },
    'explain',
    {
      workspace,
      question,
      ...(opts.user !== undefined ? { user: opts.user } : {}),
      ...(opts.device !== undefined ? { device: opts.device } : {}),
    },
  )) as {
    user: string;
    groups: string[];
    decisions: { workspace: string; assignment: string; decision: PolicyDecision; lines: string[] }[];
  };
  const d = reply.decisions[0];
  if (!d)
    throw new NotFoundError(`The server has no assignment of ${workspace} for ${reply.user}.`, {
      details: { workspace, user: reply.user },
    });
  ctx.result(
    { ...d.decision, server: { url: opts.server, user: reply.user, groups: reply.groups, assignment: d.assignment } },
    [
      ...d.lines,
      `server: ${opts.server ?? ''} (assignment ${d.assignment}; groups: ${reply.groups.join('; ') || 'none'})`,
    ],
  );
}

/** `tandem policy explain ...` and `tandem policy test FILE` */
export function registerPolicy(program: Command, host: CommandHost): void {
  const policy = program
    .command('policy')
    .description('explain policy decisions and test a table of expected decisions');

  policy
    .command('explain')
    .description(
      "decide one question for a user and their groups, and say which rule and layer decided and why; with --server, the server's view",
    )
    .argument(
      '<workspace>',
      'workspace file (YAML or JSON); its policy is the package default. With --server: the workspace name',
    )
    .option('--layer <file>', 'a policy layer file (kind: PolicyLayer); repeat for several', collect, [])
    .option('--user <id>', 'the user id')
    .option('--group <name>', 'a group of the user (name or DN); repeat for several', collect, [])
    .option('--url <url>', 'where does this URL open?')
    .option('--from <side>', 'with --url: where it was opened, host or guest (default host)')
    .option('--transfer <channel>', 'is this transfer allowed? clipboard, file, print, usb, audio, smartcard or x-name')
    .option('--direction <dir>', 'with --transfer: host-to-guest or guest-to-host')
    .option('--content-type <type>', 'with --transfer clipboard: text, image or files')
    .option('--size <bytes>', 'with --transfer: the size in bytes')
    .option('--usage', 'may the workspace run now, and for how long?')
    .option('--now <time>', 'with --usage: decide as of this time (ISO 8601) instead of now')
    .option('--offline', 'with --usage: the endpoint is offline')
    .option('--last-online <time>', 'with --usage: the last successful online check (ISO 8601)')
    .option('--last-activity <time>', 'with --usage: the last user activity, for the idle lock (ISO 8601)')
    .option('--provisioning', 'does the user get this workspace at all?')
    .option(
      '--server <url>',
      "ask the management server (its assignments, policy layers and the user's directory groups)",
    )
    .option('--device <id>', 'with --server: an enrolled device (its user when --user is not given)')
    .option('--admin-token-file <file>', "with --server: the admin token (default: the local server directory's)")
    .option('--ca <file>', "with --server: the server's CA or self-signed certificate (PEM)")
    .option('--dir <dir>', 'with --server: a local server directory to read the token and certificate from')
    .action(
      host.run(async (ctx, file: string, opts: ExplainOptions) => {
        const q = question(opts);
        if (opts.server !== undefined) return explainOnServer(ctx, file, q, opts);
        if (opts.device !== undefined || opts.adminTokenFile !== undefined)
          throw new InvalidInputError('--device and --admin-token-file go with --server URL.', { details: {} });
        const now = instant(opts.now, '--now');
        const { engine } = await loadPolicy({
          workspaceFile: file,
          layerFiles: opts.layer,
          ...(now !== undefined ? { clock: { now: () => now } } : {}),
        });
        reportSiteLists(ctx, engine.siteLists);
        const subject = { ...(opts.user !== undefined ? { user: opts.user } : {}), groups: opts.group };
        const decision: PolicyDecision = engine.explain(subject, q);
        ctx.result(decision, formatDecision(decision));
      }),
    );

  policy
    .command('test')
    .description(
      `check a table of expected decisions (kind: PolicyTest); exit ${ExitCode.checkFailed} when any case fails`,
    )
    .argument('<file>', 'the test table (YAML or JSON)')
    .action(
      host.run(async (ctx, file: string) => {
        const { results, policy: loaded } = await runPolicyTestFile(file);
        reportSiteLists(ctx, loaded.engine.siteLists);
        const failed = results.filter((r) => !r.passed);
        const lines = results.flatMap((r) => [
          `${r.passed ? 'ok  ' : 'FAIL'} ${r.index + 1}. ${r.name}`,
          ...r.failures.map((f) => `       ${f}`),
        ]);
        lines.push(
          `${results.length - failed.length} of ${results.length} cases as expected${failed.length > 0 ? `; ${failed.length} not` : ''}`,
        );
        ctx.result(
          {
            file,
            passed: results.length - failed.length,
            failed: failed.length,
            results: results.map((r) => ({
              index: r.index,
              name: r.name,
              passed: r.passed,
              failures: r.failures,
              ...(r.decision
                ? { outcome: r.decision.outcome, rule: r.decision.rule?.label ?? null, layer: r.decision.layer }
                : { error: r.error }),
            })),
          },
          lines,
        );
        if (failed.length === 0) return ExitCode.ok;
        process.stderr.write(
          `tandem: ${failed.length} of ${results.length} policy test cases did not decide as expected\n`,
        );
        return ExitCode.checkFailed;
      }),
    );
}
