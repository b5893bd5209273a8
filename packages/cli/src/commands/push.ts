import type { Command } from 'commander';
import { InvalidInputError, loadKeys, openStore, pushPackage } from '@tandem/core';
import type { CommandHost } from '../program.js';

const MIB = 1024 * 1024;
const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** `tandem push PACKAGE REPO` */
export function registerPush(program: Command, host: CommandHost): void {
  program
    .command('push')
    .description(
      'publish a package into a repository (a directory or s3://bucket/prefix); chunks already there are not uploaded again',
    )
    .argument('<package>', 'package made by `tandem pack`: a package file or a package directory')
    .argument(
      '<repo>',
      'repository: a directory, file://, or s3://bucket/prefix (endpoint and credentials from AWS_* variables)',
    )
    .requiredOption('--keys <dir>', 'directory with the targets, snapshot and timestamp keys (from `tandem repo init`)')
    .option('--channel <name>', 'point this channel (stable, pilot, ...) at the version; repeatable', collect, [])
    .option(
      '--delta-versions <n>',
      'store deltas of near-duplicate chunks against the chunks of the last N published versions (default 2)',
    )
    .option('--no-deltas', 'store no deltas (whole chunks only, as before)')
    .action(
      host.run(
        async (
          ctx,
          pkg: string,
          repo: string,
          opts: { keys: string; channel: string[]; deltas: boolean; deltaVersions?: string },
        ) => {
          let versions: number | undefined;
          if (opts.deltaVersions !== undefined) {
            versions = Number(opts.deltaVersions);
            if (!/^\d+$/.test(opts.deltaVersions) || !Number.isSafeInteger(versions))
              throw new InvalidInputError(
                `--delta-versions ${JSON.stringify(opts.deltaVersions)}: expected a whole number of versions (0 turns deltas off).`,
              );
          }
          const store = openStore(repo);
          try {
            const keys = await loadKeys(opts.keys);
            const r = await pushPackage({
              package: pkg,
              store,
              keys,
              channels: opts.channel,
              deltas: opts.deltas ? (versions === undefined ? {} : { versions }) : false,
              onProgress: (p) =>
                ctx.line(
                  { event: 'push.progress', ...p },
                  `uploaded ${p.chunksUploaded} chunks (${(p.bytesUploaded / MIB).toFixed(1)} MiB)`,
                ),
            });
            ctx.result(r, [
              `${r.workspace} ${r.version} ${r.alreadyPublished ? 'was already published' : 'published'} in ${store.location}${opts.channel.length ? ` (channels: ${opts.channel.join(', ')})` : ''}`,
              `${r.chunksUploaded} chunks uploaded (${(r.bytesUploaded / MIB).toFixed(1)} MiB), ${r.chunksSkipped} already there (${(r.bytesSkipped / MIB).toFixed(1)} MiB)`,
              ...(r.deltas > 0
                ? [`${r.deltas} near-duplicate chunks also stored as deltas (${(r.deltaBytes / MIB).toFixed(2)} MiB)`]
                : []),
            ]);
          } finally {
            store.close?.();
          }
        },
      ),
    );
}
