import type { Command } from 'commander';
import { InvalidStateError, UnsupportedCapabilityError, type HypervisorAdapter } from '@tandem/core';
import type { CommandHost } from '../program.js';
import type { CliContext } from '../context.js';
import { openAdapter } from '../adapters.js';
import { StateDir, type SessionRecord } from '../state.js';

/**
 * `tandem overlay list|discard`: the encrypted overlay a session of an encrypted workspace keeps
 * (`usage.onSessionEnd: snapshot` on libvirt, docs/encryption.md). Discarding it takes the VM back
 * to the image as delivered; the session's writes are gone.
 */
export function registerOverlay(program: Command, host: CommandHost): void {
  const overlay = program
    .command('overlay')
    .description("the encrypted overlay an encrypted workspace's session writes into (kept by onSessionEnd: snapshot)");

  overlay
    .command('list')
    .description("show the encrypted overlay on each of the workspace VM's encrypted disks")
    .argument('[workspace]', 'workspace name (optional when there is only one session)')
    .action(
      host.run(async (ctx, workspace: string | undefined) => {
        const on = await withOverlays(ctx, workspace, 'list', (ops, vm) => ops.list(vm));
        ctx.result(
          { workspace: on.record.workspace, vm: on.record.vm, overlays: on.value },
          on.value.length === 0
            ? `${on.record.workspace}: no encrypted overlay`
            : on.value.map((o) => `${on.record.workspace}: ${o.overlay} (on ${o.base})`),
        );
      }),
    );

  overlay
    .command('discard')
    .description(
      "delete the kept encrypted overlay: the VM is back on the image as delivered, the session's writes are gone (the VM must be stopped)",
    )
    .argument('<workspace>', 'workspace name')
    .action(
      host.run(async (ctx, workspace: string) => {
        const on = await withOverlays(ctx, workspace, 'discard', async (ops, vm, adapter) => {
          const state = await adapter.state(vm);
          if (state !== 'stopped' && state !== 'crashed') {
            throw new InvalidStateError(
              `The VM of workspace "${workspace}" is ${state}: its encrypted overlay is in use. Stop it first (tandem stop ${workspace}), then discard the overlay.`,
              state,
              { details: { workspace, vm, expected: ['stopped', 'crashed'] } },
            );
          }
          return ops.discard(vm);
        });
        ctx.result(
          { workspace, vm: on.record.vm, discarded: on.value },
          on.value.length === 0
            ? `${workspace}: no encrypted overlay to discard`
            : on.value.map((o) => `${workspace}: discarded ${o.overlay}; the VM is on ${o.base} again`),
        );
      }),
    );
}

type OverlayOps = NonNullable<HypervisorAdapter['encryptedOverlays']>;

/** Runs `fn` on the session's adapter, under the VM's lock, once it is known to have encrypted overlays. */
async function withOverlays<T>(
  ctx: CliContext,
  workspace: string | undefined,
  what: string,
  fn: (ops: OverlayOps, vm: string, adapter: HypervisorAdapter) => Promise<T>,
): Promise<{ record: SessionRecord; value: T }> {
  const state = new StateDir(ctx.stateDir);
  const record = state.resolve(workspace);
  return state.withVmLock(record.vm, async () => {
    const { adapter } = await openAdapter(state, record.adapter.name, record.adapter.options);
    try {
      const ops = adapter.encryptedOverlays;
      if (adapter.capabilities.encryptedOverlays !== true || !ops) {
        throw new UnsupportedCapabilityError(
          `The ${adapter.name} adapter of workspace "${record.workspace}" has no encrypted overlays, so there is none to ${what}: its encrypted disks use the hypervisor's own snapshots (tandem snapshot list).`,
          { details: { workspace: record.workspace, adapter: adapter.name } },
        );
      }
      return { record, value: await fn(ops, record.vm, adapter) };
    } finally {
      await adapter.close?.();
    }
  });
}
