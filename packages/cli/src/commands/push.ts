import type { Command } from 'commander';
import { loadKeys, openStore, pushPackage } from '@tandem/core';
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
    .action(
      host.run(async (ctx, pkg: string, repo: string, opts: { keys: string; channel: string[] }) => {
        const store = openStore(repo);
        try {
          const keys = await loadKeys(opts.keys);
          const r = await pushPackage({
            package: pkg,
            store,
            keys,
            channels: opts.channel,
            onProgress: (p) =>
              ctx.line(
                { event: 'push.progress', ...p },
                `uploaded ${p.chunksUploaded} chunks (${(p.bytesUploaded / MIB).toFixed(1)} MiB)`,
              ),
          });
          ctx.result(r, [
            `${r.workspace} ${r.version} ${r.alreadyPublished ? 'was already published' : 'published'} in ${store.location}${opts.channel.length ? ` (channels: ${opts.channel.join(', ')})` : ''}`,
            `${r.chunksUploaded} chunks uploaded (${(r.bytesUploaded / MIB).toFixed(1)} MiB), ${r.chunksSkipped} already there (${(r.bytesSkipped / MIB).toFixed(1)} MiB)`,
          ]);
        } finally {
          store.close?.();
        }
      }),
    );
}
