import type { Command } from 'commander';
import { loadWorkspaceFile, buildVmSpec } from '@tandem/core';
import type { CommandHost } from '../program.js';

/** `tandem validate FILE` */
export function registerValidate(program: Command, host: CommandHost): void {
  program
    .command('validate')
    .description(
      'check a workspace file; exit 3 with every problem (file:line:column path: expected) when it is invalid',
    )
    .argument('<file>', 'workspace file (YAML or JSON)')
    .option('--host-memory <MiB>', 'show the VM memory this workspace gets on a host with this much RAM')
    .action(
      host.run(async (ctx, file: string, opts: { hostMemory?: string }) => {
        const loaded = await loadWorkspaceFile(file);
        const { workspace } = loaded;
        const hostMemoryMiB = opts.hostMemory ? Number(opts.hostMemory) : undefined;
        const spec =
          hostMemoryMiB !== undefined && Number.isFinite(hostMemoryMiB)
            ? buildVmSpec(workspace, { hostMemoryMiB, baseDir: loaded.baseDir })
            : undefined;
        ctx.result(
          {
            valid: true,
            file: loaded.file,
            name: workspace.metadata.name,
            version: workspace.metadata.version,
            ...(spec ? { memoryMiB: spec.memoryMiB } : {}),
          },
          [
            `${loaded.file}: valid workspace ${workspace.metadata.name} ${workspace.metadata.version}`,
            ...(spec ? [`memory on a ${hostMemoryMiB} MiB host: ${spec.memoryMiB} MiB`] : []),
          ],
        );
      }),
    );
}
