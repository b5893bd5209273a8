import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { InvalidInputError, NotFoundError, parsePolicyLayer } from '@tandem/core';
import { openDeployment, type Deployment } from '@tandem/server';
import { endpointReportCsv, eventsCsv, failuresCsv, versionDistributionCsv } from '@tandem/server/store';
import type { CliContext } from '../context.js';
import type { CommandHost } from '../program.js';
import { readDataKeyFile } from './keys-files.js';
import { serverDirOf } from './server.js';
import { readSecret } from './login.js';

const many = (v: string, a: string[]): string[] => [...a, v];

async function withDeployment<T>(
  ctx: CliContext,
  dir: string | undefined,
  fn: (d: Deployment, actor: string) => Promise<T>,
): Promise<T> {
  const d = await openDeployment(serverDirOf(ctx, dir));
  try {
    return await fn(d, `cli:${userInfo().username}`);
  } finally {
    await d.close();
  }
}

/** `tandem admin ...`: users, groups, assignments, policy, keys, devices and reports, on the server directory's store. */
export function registerAdmin(program: Command, host: CommandHost): void {
  const admin = program
    .command('admin')
    .description('administer the management server (works on its store; every change is audited)');
  const dirOf = (opts: unknown): string | undefined => (opts as { dir?: string }).dir;

  const user = admin.command('user').description('users of the built-in directory');
  user
    .command('add <name>')
    .option('--display-name <text>')
    .option('--password <password>', 'the password (prefer --password-stdin)')
    .option('--password-stdin', 'read the password from stdin')
    .option('--expires <iso>', 'the account expires then')
    .option('--password-expires <iso>', 'the password expires then')
    .action(
      host.run(
        async (
          ctx,
          name: string,
          opts: {
            displayName?: string;
            password?: string;
            passwordStdin?: boolean;
            expires?: string;
            passwordExpires?: string;
          },
        ) => {
          const password = await readSecret(opts);
          await withDeployment(ctx, dirOf(opts), (d, actor) =>
            d.admin.addUser(actor, {
              name,
              password,
              ...(opts.displayName !== undefined ? { displayName: opts.displayName } : {}),
              ...(opts.expires !== undefined ? { expiresAt: opts.expires } : {}),
              ...(opts.passwordExpires !== undefined ? { passwordExpiresAt: opts.passwordExpires } : {}),
            }),
          );
          ctx.result({ user: name, added: true }, `user ${name} added`);
        },
      ),
    );
  for (const [verb, change, text] of [
    ['disable', { disabled: true }, 'disabled'],
    ['enable', { disabled: false }, 'enabled'],
    ['unlock', { lockedUntil: null }, 'unlocked'],
  ] as const)
    user.command(`${verb} <name>`).action(
      host.run(async (ctx, name: string, o: unknown) => {
        await withDeployment(ctx, dirOf(o), (d, actor) => d.admin.setUserState(actor, name, change));
        ctx.result({ user: name, ...change }, `user ${name} ${text}`);
      }),
    );
  user.command('remove <name>').action(
    host.run(async (ctx, name: string, o: unknown) => {
      const removed = await withDeployment(ctx, dirOf(o), (d, actor) => d.admin.removeUser(actor, name));
      if (!removed) throw new NotFoundError(`No built-in user ${name}.`);
      ctx.result({ user: name, removed }, `user ${name} removed`);
    }),
  );
  user.command('list').action(
    host.run(async (ctx, o: unknown) => {
      const users = await withDeployment(ctx, dirOf(o), (d) => d.admin.listUsers());
      ctx.result(
        { users },
        users.length === 0 ? 'no users' : users.map((u) => `${u.name}${u.disabled ? ' (disabled)' : ''}`),
      );
    }),
  );

  const group = admin
    .command('group')
    .description('groups of the built-in directory (members: user names, group:NAME for nesting)');
  group
    .command('add <name>')
    .option('--member <name>', 'a user, or group:NAME (repeatable)', many, [])
    .action(
      host.run(async (ctx, name: string, opts: { member: string[] }) => {
        const g = await withDeployment(ctx, dirOf(opts), (d, actor) => d.admin.addMembers(actor, name, opts.member));
        ctx.result({ group: g }, `group ${name}: ${g.members.join(', ') || 'no members'}`);
      }),
    );
  group.command('list').action(
    host.run(async (ctx, o: unknown) => {
      const groups = await withDeployment(ctx, dirOf(o), (d) => d.admin.listGroups());
      ctx.result(
        { groups },
        groups.length === 0 ? 'no groups' : groups.map((g) => `${g.name}: ${g.members.join(', ')}`),
      );
    }),
  );

  admin
    .command('assign <workspace>')
    .description('give a workspace (a channel or a version) with policy layers to users and groups')
    .option('--user <name>', 'a user (repeatable)', many, [])
    .option('--group <name-or-dn>', 'a group: its DN, or its name (repeatable)', many, [])
    .option('--channel <name>', 'follow a channel (stable, pilot)')
    .option('--version <version>', 'pin a version')
    .option('--policy <layer>', 'a policy layer, lowest first (repeatable)', many, [])
    .option('--lease <duration>', 'the offline lease when the policy does not say (P14D)')
    .option('--id <id>', 'replace this assignment')
    .action(
      host.run(
        async (
          ctx,
          workspace: string,
          opts: {
            user: string[];
            group: string[];
            channel?: string;
            version?: string;
            policy: string[];
            lease?: string;
            id?: string;
          },
        ) => {
          const a = await withDeployment(ctx, dirOf(opts), (d, actor) =>
            d.admin.assign(actor, {
              workspace,
              users: opts.user,
              groups: opts.group,
              channel: opts.channel,
              version: opts.version,
              policyLayers: opts.policy,
              lease: opts.lease,
              id: opts.id,
            }),
          );
          ctx.result({ assignment: a }, `assignment ${a.id}: ${workspace} to ${[...a.users, ...a.groups].join(', ')}`);
        },
      ),
    );
  admin
    .command('channel <workspace> <channel> <version>')
    .description("publish a channel's new version: endpoints following it hear of it at their next check-in")
    .action(
      host.run(async (ctx, workspace: string, channel: string, version: string, o: unknown) => {
        const n = await withDeployment(ctx, dirOf(o), (d, actor) =>
          d.admin.setChannelVersion(actor, workspace, channel, version),
        );
        ctx.result(
          { workspace, channel, version, assignments: n },
          `${workspace} ${channel} is now ${version} (${n} assignment(s))`,
        );
      }),
    );
  admin.command('unassign <id>').action(
    host.run(async (ctx, id: string, o: unknown) => {
      const removed = await withDeployment(ctx, dirOf(o), (d, actor) => d.admin.unassign(actor, id));
      if (!removed) throw new NotFoundError(`No assignment ${id}.`);
      ctx.result({ id, removed }, `assignment ${id} removed`);
    }),
  );
  admin.command('assignments').action(
    host.run(async (ctx, o: unknown) => {
      const list = await withDeployment(ctx, dirOf(o), (d) => d.admin.listAssignments());
      ctx.result(
        { assignments: list },
        list.length === 0
          ? 'no assignments'
          : list.map((a) => `${a.id}  ${a.workspace}  ${[...a.users, ...a.groups].join(', ')}`),
      );
    }),
  );
  admin
    .command('policy <name> <file>')
    .description('add or replace a policy layer (a kind: PolicyLayer file, as tandem validate reads)')
    .action(
      host.run(async (ctx, name: string, file: string, o: unknown) => {
        const layer = parsePolicyLayer(await readFile(file, 'utf8'), { file });
        const document = {
          apiVersion: 'tandem/v1',
          kind: 'PolicyLayer',
          layer: layer.layer,
          ...(layer.policy !== undefined ? { policy: layer.policy } : {}),
          assignments: layer.assignments ?? [],
        };
        await withDeployment(ctx, dirOf(o), (d, actor) => d.admin.putPolicyLayer(actor, name, document));
        ctx.result({ name, file }, `policy layer ${name} stored`);
      }),
    );
  admin
    .command('workspace-key <workspace>')
    .description("store a workspace's data key on the server (sealed at rest); a new random one unless --data-key")
    .option('--data-key <file>', 'a data key file from tandem keys image new')
    .action(
      host.run(async (ctx, workspace: string, opts: { dataKey?: string }) => {
        const given = opts.dataKey !== undefined ? await readDataKeyFile(opts.dataKey) : undefined;
        if (given && given.imageId !== workspace)
          throw new InvalidInputError(`${opts.dataKey ?? ''} is the key of ${given.imageId}, not ${workspace}.`);
        try {
          const r = await withDeployment(ctx, dirOf(opts), (d, actor) =>
            d.admin.putWorkspaceKey(actor, workspace, given?.key),
          );
          ctx.result({ workspace, ...r }, `data key ${r.dataKeyId} of ${workspace} stored, sealed at rest`);
        } finally {
          given?.key.dispose();
        }
      }),
    );
  admin
    .command('explain <user>')
    .description("what a user gets and why: the server's view (tandem policy explain against the server)")
    .action(
      host.run(async (ctx, name: string, o: unknown) => {
        const r = await withDeployment(ctx, dirOf(o), (d) => d.admin.explain(name));
        ctx.result(r, [
          `${name} (groups: ${r.groups.join('; ') || 'none'})`,
          ...r.workspaces.map((w) => `  gets ${w.workspace} (lease ${w.lease}): ${w.reason}`),
          ...r.notGiven.map((w) => `  not ${w.workspace}: ${w.reason}`),
        ]);
      }),
    );

  const device = admin.command('device').description('enrolled devices');
  device
    .command('list')
    .option('--user <name>')
    .action(
      host.run(async (ctx, opts: { user?: string }) => {
        const r = await withDeployment(ctx, dirOf(opts), (d) =>
          d.admin.listDevices(opts.user !== undefined ? { user: opts.user } : {}),
        );
        ctx.result(
          r,
          r.devices.length === 0
            ? 'no devices'
            : r.devices.map((x) => `${x.id}  ${x.user}  ${x.hostName}${x.revokedAt ? '  revoked' : ''}`),
        );
      }),
    );
  device.command('revoke <id>').action(
    host.run(async (ctx, id: string, o: unknown) => {
      const revoked = await withDeployment(ctx, dirOf(o), (d, actor) => d.admin.revokeDevice(actor, id));
      if (!revoked) throw new NotFoundError(`No enrolled, unrevoked device ${id}.`);
      ctx.result({ id, revoked }, `device ${id} revoked: it gets no more keys`);
    }),
  );

  const report = admin.command('report').description('reports (JSON with --json, CSV with --csv)');
  const csvOpt = (c: Command): Command => c.option('--csv', 'CSV instead of a table');
  csvOpt(report.command('endpoints')).action(
    host.run(async (ctx, opts: { csv?: boolean }) => {
      const rows = await withDeployment(ctx, dirOf(opts), (d) => d.admin.endpoints());
      if (opts.csv) return void process.stdout.write(endpointReportCsv(rows));
      ctx.result(
        { rows },
        rows.length === 0
          ? 'no endpoints'
          : rows.map(
              (r) =>
                `${r.device}  ${r.user}  ${r.hostName}  ${r.lastCheckInAt ?? 'never'}  ${r.workspaces.map((w) => `${w.workspace}@${w.version ?? '?'}`).join(' ')}`,
            ),
      );
    }),
  );
  csvOpt(report.command('events'))
    .option('--user <name>')
    .option('--device <id>')
    .option('--workspace <name>')
    .option('--type <type>')
    .option('--since <iso>')
    .option('--limit <n>', 'at most this many', (v) => Number(v))
    .action(
      host.run(
        async (
          ctx,
          opts: {
            csv?: boolean;
            user?: string;
            device?: string;
            workspace?: string;
            type?: string;
            since?: string;
            limit?: number;
          },
        ) => {
          const { csv, dir: _dir, ...filter } = opts as typeof opts & { dir?: string };
          const page = await withDeployment(ctx, dirOf(opts), (d) =>
            d.admin.events(Object.fromEntries(Object.entries(filter).filter(([, v]) => v !== undefined))),
          );
          if (csv) return void process.stdout.write(eventsCsv(page));
          ctx.result(
            page,
            page.events.length === 0
              ? 'no events'
              : page.events.map((e) => `${e.event.at}  ${e.event.type}  ${e.user ?? '-'}  ${e.event.workspace ?? '-'}`),
          );
        },
      ),
    );
  csvOpt(report.command('failures')).action(
    host.run(async (ctx, opts: { csv?: boolean }) => {
      const rows = await withDeployment(ctx, dirOf(opts), (d) => d.admin.failures());
      if (opts.csv) return void process.stdout.write(failuresCsv(rows));
      ctx.result(
        { rows },
        rows.length === 0 ? 'no failures in the last day' : rows.map((r) => `${r.type}: ${r.count}`),
      );
    }),
  );
  csvOpt(report.command('versions')).action(
    host.run(async (ctx, opts: { csv?: boolean }) => {
      const rows = await withDeployment(ctx, dirOf(opts), (d) => d.admin.versions());
      if (opts.csv) return void process.stdout.write(versionDistributionCsv(rows));
      ctx.result(
        { rows },
        rows.length === 0 ? 'no versions reported' : rows.map((r) => `${r.workspace} ${r.version}: ${r.devices}`),
      );
    }),
  );
  report
    .command('audit')
    .option('--actor <actor>', 'only this actor (console:alice, cli:root, admin-api)')
    .option('--since <iso>')
    .option('--limit <n>', 'at most this many', (v) => Number(v))
    .action(
      host.run(async (ctx, o: { actor?: string; since?: string; limit?: number }) => {
        const rows = await withDeployment(ctx, dirOf(o), (d) =>
          d.admin.audit({
            ...(o.actor !== undefined ? { actor: o.actor } : {}),
            ...(o.since !== undefined ? { since: o.since } : {}),
            ...(o.limit !== undefined ? { limit: o.limit } : {}),
          }),
        );
        ctx.result(
          { rows },
          rows.length === 0 ? 'no admin actions' : rows.map((r) => `${r.at}  ${r.actor}  ${r.action}  ${r.target}`),
        );
      }),
    );

  // The console's actions (issue 16), the same as POST /v1/admin/<action>.
  admin
    .command('overview')
    .description('endpoints online now and in the last day, sessions running, failures in the last day, versions')
    .action(
      host.run(async (ctx, o: unknown) => {
        const r = await withDeployment(ctx, dirOf(o), (d) => d.admin.overview());
        ctx.result(r, [
          `endpoints: ${r.endpoints.total} (online now ${r.endpoints.onlineNow}, last day ${r.endpoints.lastDay}, revoked ${r.endpoints.revoked})`,
          `sessions running: ${r.sessionsRunning}`,
          `failures in the last day: ${r.failuresLastDay.total}${r.failuresLastDay.byType.map((f) => ` ${f.type}=${f.count}`).join('')}`,
          ...r.versions.map((v) => `  ${v.workspace} ${v.version}: ${v.devices}`),
        ]);
      }),
    );
  admin
    .command('endpoints')
    .description('the endpoint table: search, filter, sort and page in the store')
    .option('--search <text>', 'part of the device id, user or host name')
    .option('--state <state>', 'online, offline, never or revoked')
    .option('--workspace <name>')
    .option('--version <version>')
    .option('--checked-in-after <iso>')
    .option('--checked-in-before <iso>')
    .option('--sort <column>', 'device, user, hostName, lastCheckInAt or enrolledAt')
    .option('--order <order>', 'asc or desc')
    .option('--limit <n>', 'rows per page, 1 to 500 (default 50)', (v) => Number(v))
    .option('--offset <n>', 'rows to skip', (v) => Number(v))
    .action(
      host.run(async (ctx, opts: Record<string, unknown>) => {
        const { dir: _dir, ...query } = opts;
        const r = await withDeployment(ctx, dirOf(opts), (d) =>
          d.admin.searchEndpoints(
            Object.fromEntries(Object.entries(query).filter(([, v]) => v !== undefined)) as Parameters<
              typeof d.admin.searchEndpoints
            >[0],
          ),
        );
        ctx.result(r, [
          `${r.total} endpoint(s)`,
          ...r.rows.map(
            (x) =>
              `${x.device}  ${x.user}  ${x.hostName}  ${x.state}  ${x.lastCheckInAt ?? 'never'}  ${x.workspaces.map((w) => `${w.workspace}@${w.version ?? '?'}`).join(' ')}`,
          ),
        ]);
      }),
    );
  device
    .command('show <id>')
    .description('one device: user, versions, lease expiry, last events')
    .action(
      host.run(async (ctx, id: string, o: unknown) => {
        const r = await withDeployment(ctx, dirOf(o), (d) => d.admin.deviceDetail(id));
        ctx.result(r, [
          `${r.device.id}  ${r.device.user}  ${r.device.hostName}  ${r.device.state}`,
          `last check-in: ${r.device.lastCheckInAt ?? 'never'}; agent ${r.device.agentVersion ?? 'unknown'}`,
          ...r.workspaces.map((w) => `  ${w.workspace} ${w.version ?? '?'} ${w.state ?? ''}`),
          ...r.leases.map((l) => `  lease ${l.workspace}: until ${l.notAfter}`),
          ...r.events.slice(0, 10).map((e) => `  ${e.event.at}  ${e.event.type}`),
        ]);
      }),
    );
  admin
    .command('directory <text>')
    .description('search users and groups of the directory (built-in or LDAP)')
    .option('--kind <kind>', 'user, group or all', 'all')
    .option('--limit <n>', 'at most this many of each', (v) => Number(v))
    .action(
      host.run(async (ctx, text: string, opts: { kind?: 'user' | 'group' | 'all'; limit?: number }) => {
        const r = await withDeployment(ctx, dirOf(opts), (d) =>
          d.admin.searchDirectory(text, {
            ...(opts.kind !== undefined ? { kind: opts.kind } : {}),
            ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
          }),
        );
        ctx.result(r, [
          ...r.users.map((u) => `user  ${u.name}  ${u.dn}${u.displayName ? `  (${u.displayName})` : ''}`),
          ...r.groups.map((g) => `group ${g.name}  ${g.dn}`),
        ]);
      }),
    );
  admin
    .command('validate-policy <file>')
    .description('check a policy layer file with the same schema and messages the server uses')
    .action(
      host.run(async (ctx, file: string, o: unknown) => {
        const text = await readFile(file, 'utf8');
        const r = await withDeployment(ctx, dirOf(o), async (d) => d.admin.validatePolicyLayer(text));
        if (!r.ok)
          throw new InvalidInputError(
            `${file} is not a valid policy layer:\n  ${r.issues
              .map(
                (i) => `${file}${i.line !== undefined ? `:${i.line}` : ''}: ${i.path ? `${i.path}: ` : ''}${i.message}`,
              )
              .join('\n  ')}`,
            { details: { file, issues: r.issues } },
          );
        ctx.result({ file, ...r }, `${file}: valid policy layer`);
      }),
    );
  admin
    .command('channels')
    .description("each workspace's channels, the versions they name, and who gets them")
    .action(
      host.run(async (ctx, o: unknown) => {
        const r = await withDeployment(ctx, dirOf(o), (d) => d.admin.channels());
        ctx.result(r, [
          `(from the ${r.source})`,
          ...r.workspaces.flatMap((w) => [
            `${w.workspace}: versions ${w.versions.join(', ') || 'none'}`,
            ...w.channels.map(
              (c) => `  ${c.channel} -> ${c.version ?? '?'}  (${[...c.users, ...c.groups].join(', ')})`,
            ),
          ]),
        ]);
      }),
    );
  admin.command('policies').action(
    host.run(async (ctx, o: unknown) => {
      const rows = await withDeployment(ctx, dirOf(o), (d) => d.admin.listPolicyLayers());
      ctx.result({ rows }, rows.length === 0 ? 'no policy layers' : rows.map((r) => `${r.name}  ${r.updatedAt}`));
    }),
  );
  admin.command('policy-remove <name>').action(
    host.run(async (ctx, name: string, o: unknown) => {
      const removed = await withDeployment(ctx, dirOf(o), (d, actor) => d.admin.removePolicyLayer(actor, name));
      if (!removed) throw new NotFoundError(`No policy layer ${name}.`);
      ctx.result({ name, removed }, `policy layer ${name} removed`);
    }),
  );
  // Every admin command takes --dir (the server directory).
  const addDir = (cmd: Command): void => {
    if (cmd.commands.length === 0) cmd.option('--dir <dir>', 'the server directory (default <state-dir>/server)');
    cmd.commands.forEach(addDir);
  };
  addDir(admin);
}
