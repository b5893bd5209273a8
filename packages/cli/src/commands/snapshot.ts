import type { Command } from 'commander';
import { buildSnapshotTree, formatSnapshotTree } from '@tandem/core';
import type { CommandHost } from '../program.js';
import { withSession } from '../runtime.js';
import { throughAgent } from '../agent-client.js';

/** `tandem snapshot create|list|revert|delete` */
export function registerSnapshot(program: Command, host: CommandHost): void {
  const snapshot = program.command('snapshot').description("manage the session VM's snapshots");
  const wsOpt = ['-w, --workspace <name>', 'workspace name (optional when there is only one session)'] as const;

  snapshot
    .command('create')
    .description('take a snapshot (live when the VM runs and the adapter can)')
    .argument('<name>', 'snapshot name')
    .option(...wsOpt)
    .option('-d, --description <text>', 'description')
    .action(
      host.run(async (ctx, name: string, opts: { workspace?: string; description?: string }) => {
        const info = await throughAgent(
          ctx,
          (agent) =>
            agent.call('snapshot.create', {
              name,
              ...(opts.workspace ? { workspace: opts.workspace } : {}),
              ...(opts.description ? { description: opts.description } : {}),
            }),
          () => withSession(ctx, opts.workspace, (s) => s.snapshot(name, opts.description)),
        );
        ctx.result(info, `snapshot ${info.name} (${info.id}) taken, VM ${info.vmState}`);
      }),
    );

  snapshot
    .command('list')
    .description('show the snapshots as a tree, marking the current one')
    .option(...wsOpt)
    .action(
      host.run(async (ctx, opts: { workspace?: string }) => {
        const list = await throughAgent(
          ctx,
          async (agent) =>
            (await agent.call('snapshot.list', opts.workspace ? { workspace: opts.workspace } : {})).snapshots,
          () => withSession(ctx, opts.workspace, (s) => s.snapshots()),
        );
        const tree = buildSnapshotTree(list);
        ctx.result({ snapshots: list, tree }, list.length === 0 ? 'no snapshots' : formatSnapshotTree(tree));
      }),
    );

  snapshot
    .command('revert')
    .description('return the VM to a snapshot (by id or name), in the state it was taken in')
    .argument('<snapshot>', 'snapshot id or name')
    .option(...wsOpt)
    .action(
      host.run(async (ctx, id: string, opts: { workspace?: string }) => {
        const state = await throughAgent(
          ctx,
          async (agent) =>
            (
              await agent.call('snapshot.revert', {
                snapshot: id,
                ...(opts.workspace ? { workspace: opts.workspace } : {}),
              })
            ).state,
          () => withSession(ctx, opts.workspace, async (s) => (await s.revert(id), s.state as string)),
        );
        ctx.result({ snapshot: id, state }, `reverted to ${id}; session ${state}`);
      }),
    );

  snapshot
    .command('delete')
    .description('delete a snapshot; its children move to its parent, or go with it with --children')
    .argument('<snapshot>', 'snapshot id or name')
    .option(...wsOpt)
    .option('--children', 'delete the whole subtree')
    .action(
      host.run(async (ctx, id: string, opts: { workspace?: string; children?: boolean }) => {
        await throughAgent(
          ctx,
          async (agent) =>
            void (await agent.call('snapshot.delete', {
              snapshot: id,
              children: opts.children ?? false,
              ...(opts.workspace ? { workspace: opts.workspace } : {}),
            })),
          () => withSession(ctx, opts.workspace, (s) => s.deleteSnapshot(id, { children: opts.children ?? false })),
        );
        ctx.result(
          { deleted: id, children: opts.children ?? false },
          `deleted ${id}${opts.children ? ' and its children' : ''}`,
        );
      }),
    );
}
