import type { Command } from 'commander';
import { NoAdapterError, SessionManager, TandemError, loadWorkspaceFile, vmNameFor } from '@tandem/core';
import type { CommandHost } from '../program.js';
import { openAdapter, parseAdapterOptions } from '../adapters.js';
import { cliEvents } from '../runtime.js';
import { StateDir } from '../state.js';
import { collect } from './doctor.js';

/** `tandem up FILE [--adapter NAME]` */
export function registerUp(program: Command, host: CommandHost): void {
  program
    .command('up')
    .description('open a session for a workspace file: define its VM (memory sized by this host) and start it')
    .argument('<file>', 'workspace file (YAML or JSON)')
    .option(
      '-a, --adapter <name>',
      'libvirt, virtualbox, hyperv, mock, or an adapter package name (default: $TANDEM_ADAPTER, else detect)',
    )
    .option('--adapter-option <key=value>', 'adapter option, e.g. uri=qemu:///system (repeatable)', collect, [])
    .option('--no-start', 'define the VM and record the session without starting it')
    .action(
      host.run(async (ctx, file: string, opts: { adapter?: string; adapterOption: string[]; start: boolean }) => {
        const loaded = await loadWorkspaceFile(file);
        const name = loaded.workspace.metadata.name;
        const state = new StateDir(ctx.stateDir);
        const vm = vmNameFor(loaded.workspace);
        const existing = state.find(name);
        if (existing && existing.adapter.name !== (opts.adapter ?? existing.adapter.name)) {
          throw new TandemError(
            `Workspace "${name}" already has a session on the ${existing.adapter.name} adapter; run "tandem down ${name}" first to move it to ${opts.adapter}.`,
            { code: 'TANDEM_CONFLICT', fault: 'user', details: { workspace: name, adapter: existing.adapter.name } },
          );
        }
        const adapterOptions =
          existing && !opts.adapterOption.length ? existing.adapter.options : parseAdapterOptions(opts.adapterOption);
        await state.withVmLock(vm, async () => {
          let opened;
          try {
            opened = await openAdapter(state, opts.adapter ?? existing?.adapter.name, adapterOptions);
          } catch (err) {
            if (err instanceof NoAdapterError || TandemError.is(err, 'TANDEM_NO_ADAPTER')) {
              throw new NoAdapterError(
                `${(err as Error).message}\nTo try Tandem without a hypervisor, use --adapter mock.`,
                { cause: err },
              );
            }
            throw err;
          }
          const { adapter } = opened;
          const { events, close } = cliEvents(ctx, state);
          try {
            const manager = new SessionManager({ adapter, events });
            const session = await manager.open(loaded, {
              vmName: vm,
              ...(existing ? { sessionId: existing.id, locked: existing.state === 'locked' } : {}),
            });
            const now = new Date().toISOString();
            const record = {
              id: session.id,
              workspace: name,
              file: loaded.file,
              spec: loaded.workspace,
              adapter: { name: opened.name, options: adapterOptions },
              vm,
              state: session.state,
              createdAt: existing?.createdAt ?? now,
              updatedAt: now,
            };
            state.save(record);
            try {
              if (opts.start && session.can('start')) await session.start();
            } finally {
              state.save({ ...record, state: session.state, updatedAt: new Date().toISOString() });
            }
            ctx.result(
              { session: session.id, workspace: name, vm, adapter: opened.name, state: session.state },
              `session ${session.id}: workspace ${name} on ${opened.name}, VM ${vm}, ${session.state}`,
            );
            await session.close();
          } finally {
            close();
            await adapter.close?.();
          }
        });
      }),
    );
}
