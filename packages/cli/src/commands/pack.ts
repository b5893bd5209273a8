import type { Command } from 'commander';
import { InvalidInputError, packWorkspace, type PackageFormat } from '@tandem/core';
import type { CommandHost } from '../program.js';
import { readDataKeyFile } from './keys-files.js';

const MIB = 1024 * 1024;

function positiveInt(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new InvalidInputError(`${name} ${JSON.stringify(value)}: expected a positive whole number.`);
  return n;
}

const UNITS: Record<string, number> = { '': MIB, b: 1, k: 1024, m: MIB, g: 1024 * MIB };

/** A size such as `700M`, `1G`, `512KiB`, `300000B` or `4096` (MiB when there is no unit). */
function volumeSize(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?$/i.exec(value.trim());
  const bytes = m ? Math.floor(Number(m[1]) * UNITS[(m[2] ?? '').charAt(0).toLowerCase()]!) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new InvalidInputError(
      `--volume-size ${JSON.stringify(value)}: expected a size such as 700M, 1G or 512K (a plain number is MiB).`,
    );
  }
  return bytes;
}

function packageFormat(value: string | undefined): PackageFormat | undefined {
  if (value === undefined || value === 'file' || value === 'directory') return value;
  throw new InvalidInputError(`--format ${JSON.stringify(value)}: expected file or directory.`);
}

interface PackFlags {
  out: string;
  format?: string;
  volumeSize?: string;
  avgSize?: string;
  level?: string;
  encrypt?: boolean;
  key?: string;
  deltaFrom?: string;
  version?: string;
}

/** `tandem pack WORKSPACE --out PATH [--format file|directory] [--volume-size SIZE]` */
export function registerPack(program: Command, host: CommandHost): void {
  program
    .command('pack')
    .description(
      'build a workspace package (workspace file + image cut into compressed chunks + manifest): one file, or one directory of data files',
    )
    .argument('<workspace>', 'workspace file (tandem.workspace.yaml); its image is spec.image.source')
    .requiredOption('--out <path>', 'package file or directory to write')
    .option(
      '--format <form>',
      'file or directory (default: directory when --volume-size is given or PATH is an existing directory or ends with /, else file)',
    )
    .option(
      '--volume-size <size>',
      'largest data file of a package directory, e.g. 700M, 1G (default 1G; FAT32 holds < 4G)',
    )
    .option('--avg-size <KiB>', 'average chunk size in KiB, a power of two (default 64: chunks of 16/64/256 KiB)')
    .option('--level <n>', 'zstd compression level, 1-19 (default 3)')
    .option(
      '--version <v>',
      "package as this version instead of the file's metadata.version (the packaged file says it too)",
    )
    .option('--encrypt', 'encrypt the package with the data key given by --key (keyed chunk ids, AES-256-GCM chunks)')
    .option('--key <file>', "the image's data key file (tandem keys image new); the same for every version")
    .option(
      '--delta-from <package>',
      "with --encrypt: the previous version's encrypted package (file or directory); new chunks like one of its chunks also get an encrypted delta against it, which push publishes",
    )
    .action(
      host.run(async (ctx, workspace: string, opts: PackFlags) => {
        const avg = positiveInt(opts.avgSize, '--avg-size');
        const level = positiveInt(opts.level, '--level');
        const format = packageFormat(opts.format);
        const volume = volumeSize(opts.volumeSize);
        if (opts.encrypt && !opts.key)
          throw new InvalidInputError(
            "--encrypt needs --key FILE: the image's data key (make one with: tandem keys image new --image NAME --out FILE).",
          );
        if (opts.key && !opts.encrypt)
          throw new InvalidInputError('--key is for --encrypt; add --encrypt or drop --key.');
        if (opts.deltaFrom !== undefined && !opts.encrypt)
          throw new InvalidInputError(
            '--delta-from is for --encrypt (push makes the deltas of a plaintext package itself); add --encrypt --key FILE or drop --delta-from.',
          );
        const encryption = opts.key ? await readDataKeyFile(opts.key) : undefined;
        let result: Awaited<ReturnType<typeof packWorkspace>>;
        try {
          result = await packWorkspace({
            workspaceFile: workspace,
            out: opts.out,
            ...(format !== undefined ? { format } : {}),
            ...(volume !== undefined ? { volumeSize: volume } : {}),
            ...(avg !== undefined ? { chunking: { avgSize: avg * 1024 } } : {}),
            ...(level !== undefined ? { level } : {}),
            ...(opts.version !== undefined ? { version: opts.version } : {}),
            ...(encryption
              ? {
                  encryption: {
                    dataKey: encryption.key,
                    imageId: encryption.imageId,
                    ...(opts.deltaFrom !== undefined ? { deltaFrom: opts.deltaFrom } : {}),
                  },
                }
              : {}),
            onProgress: (p) =>
              ctx.line(
                { event: 'pack.progress', ...p },
                `packing: ${(p.bytesRead / MIB).toFixed(0)} of ${(p.bytesTotal / MIB).toFixed(0)} MiB`,
              ),
          });
        } finally {
          encryption?.key.dispose();
        }
        const m = result.manifest;
        ctx.result(
          {
            package: result.path,
            format: result.format,
            dataFiles: result.dataFiles,
            workspace: m.workspace.name,
            version: m.workspace.version,
            imageBytes: m.image.size,
            imageSha256: m.image.sha256,
            packageBytes: result.packageBytes,
            chunks: result.chunks,
            distinctChunks: result.distinctChunks,
            zeroChunks: result.zeroChunks,
            encrypted: m.encryption !== undefined,
            ...(m.encryption ? { imageId: m.encryption.imageId, keyId: m.encryption.keyId } : {}),
            deltas: result.deltas,
            deltaBytes: result.deltaBytes,
          },
          [
            `${result.path}: ${m.workspace.name} ${m.workspace.version}${result.format === 'directory' ? ` (a directory: manifest and ${result.dataFiles.length} data file${result.dataFiles.length === 1 ? '' : 's'})` : ''}`,
            `image ${(m.image.size / MIB).toFixed(1)} MiB (sha256 ${m.image.sha256}), package ${(result.packageBytes / MIB).toFixed(1)} MiB`,
            `${result.chunks} chunks, ${result.distinctChunks} distinct, ${result.zeroChunks} all zeros`,
            ...(m.encryption
              ? [`encrypted for image ${m.encryption.imageId} with data key ${m.encryption.keyId}`]
              : []),
            ...(opts.deltaFrom !== undefined
              ? [
                  `${result.deltas} encrypted deltas against ${opts.deltaFrom} (${(result.deltaBytes / 1024).toFixed(1)} KiB)`,
                ]
              : []),
          ],
        );
      }),
    );
}
