import type { Command } from 'commander';
import { InvalidInputError, packWorkspace } from '@tandem/core';
import type { CommandHost } from '../program.js';

const MIB = 1024 * 1024;

function positiveInt(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new InvalidInputError(`${name} ${JSON.stringify(value)}: expected a positive whole number.`);
  return n;
}

/** `tandem pack WORKSPACE --out PATH` */
export function registerPack(program: Command, host: CommandHost): void {
  program
    .command('pack')
    .description('build a workspace package (workspace file + image cut into compressed chunks + manifest) in one file')
    .argument('<workspace>', 'workspace file (tandem.workspace.yaml); its image is spec.image.source')
    .requiredOption('--out <path>', 'package file to write')
    .option('--avg-size <KiB>', 'average chunk size in KiB, a power of two (default 64: chunks of 16/64/256 KiB)')
    .option('--level <n>', 'zstd compression level, 1-19 (default 3)')
    .action(
      host.run(async (ctx, workspace: string, opts: { out: string; avgSize?: string; level?: string }) => {
        const avg = positiveInt(opts.avgSize, '--avg-size');
        const level = positiveInt(opts.level, '--level');
        const result = await packWorkspace({
          workspaceFile: workspace,
          out: opts.out,
          ...(avg !== undefined ? { chunking: { avgSize: avg * 1024 } } : {}),
          ...(level !== undefined ? { level } : {}),
          onProgress: (p) =>
            ctx.line(
              { event: 'pack.progress', ...p },
              `packing: ${(p.bytesRead / MIB).toFixed(0)} of ${(p.bytesTotal / MIB).toFixed(0)} MiB`,
            ),
        });
        const m = result.manifest;
        ctx.result(
          {
            package: result.path,
            workspace: m.workspace.name,
            version: m.workspace.version,
            imageBytes: m.image.size,
            imageSha256: m.image.sha256,
            packageBytes: result.packageBytes,
            chunks: result.chunks,
            distinctChunks: result.distinctChunks,
            zeroChunks: result.zeroChunks,
          },
          [
            `${result.path}: ${m.workspace.name} ${m.workspace.version}`,
            `image ${(m.image.size / MIB).toFixed(1)} MiB (sha256 ${m.image.sha256}), package ${(result.packageBytes / MIB).toFixed(1)} MiB`,
            `${result.chunks} chunks, ${result.distinctChunks} distinct, ${result.zeroChunks} all zeros`,
          ],
        );
      }),
    );
}
