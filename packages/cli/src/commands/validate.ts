import type { Command } from 'commander';
import { InvalidInputError, loadWorkspaceFile, buildVmSpec } from '@tandem/core';
import { checkComputerNameTemplate } from '@tandem/core/guest';
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
        // First-time setup's computer name: a template that cannot fit the guest OS's limit (15
        // characters of NetBIOS on Windows) is an error now, not a name cut short at setup.
        const template = workspace.spec.firstTimeSetup?.computerName;
        const nameCheck = template ? checkComputerNameTemplate(template, workspace.spec.guestOs) : undefined;
        if (nameCheck && nameCheck.errors.length > 0) {
          throw new InvalidInputError(
            `${loaded.file}: spec.firstTimeSetup.computerName: ${nameCheck.errors.join('; ')}`,
            { details: { file: loaded.file, path: 'spec.firstTimeSetup.computerName', errors: nameCheck.errors } },
          );
        }
        const warnings = (nameCheck?.warnings ?? []).map((w) => `spec.firstTimeSetup.computerName: ${w}`);
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
            ...(warnings.length > 0 ? { warnings } : {}),
          },
          [
            `${loaded.file}: valid workspace ${workspace.metadata.name} ${workspace.metadata.version}`,
            ...(spec ? [`memory on a ${hostMemoryMiB} MiB host: ${spec.memoryMiB} MiB`] : []),
            ...warnings.map((w) => `${loaded.file}: warning: ${w}`),
          ],
        );
      }),
    );
}
