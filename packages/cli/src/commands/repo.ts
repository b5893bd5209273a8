import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import {
  InvalidInputError,
  initRepository,
  loadKeys,
  openStore,
  readRepository,
  refreshRepository,
  rotateKey,
  ROLES,
  saveKey,
  setChannel,
  type RepoStore,
  type RoleName,
} from '@tandem/core';
import type { CommandHost } from '../program.js';

async function withStore<T>(address: string, fn: (store: RepoStore) => Promise<T>): Promise<T> {
  const store = openStore(address);
  try {
    return await fn(store);
  } finally {
    store.close?.();
  }
}

/** `tandem repo init|rotate-key|refresh|channel|list` */
export function registerRepo(program: Command, host: CommandHost): void {
  const repo = program.command('repo').description('create and administer a signed workspace repository');

  repo
    .command('init')
    .description('create an empty repository and its four signing keys (root, targets, snapshot, timestamp)')
    .argument('<repo>', 'a directory, file:// or s3://bucket/prefix')
    .requiredOption('--keys <dir>', 'where to write the private keys (keep root.pem offline)')
    .action(
      host.run(async (ctx, address: string, opts: { keys: string }) => {
        await withStore(address, async (store) => {
          const { keys, root } = await initRepository({ store });
          for (const role of ROLES) await saveKey(opts.keys, role, keys[role]!);
          await writeFile(join(opts.keys, 'root.json'), root);
          ctx.result({ repo: store.location, keys: opts.keys, root: join(opts.keys, 'root.json') }, [
            `repository created in ${store.location}`,
            `keys in ${opts.keys} (move root.pem offline); give endpoints ${join(opts.keys, 'root.json')} for their first pull (--root)`,
          ]);
        });
      }),
    );

  repo
    .command('rotate-key')
    .description('replace the key of a role; endpoints follow through the signed chain of root versions')
    .argument('<repo>', 'the repository')
    .requiredOption('--keys <dir>', 'keys directory; the new key replaces <role>.pem, the old one is kept as retired')
    .requiredOption('--role <role>', 'root, targets, snapshot or timestamp')
    .action(
      host.run(async (ctx, address: string, opts: { keys: string; role: string }) => {
        if (!(ROLES as readonly string[]).includes(opts.role))
          throw new InvalidInputError(`--role ${opts.role}: expected one of ${ROLES.join(', ')}.`);
        const role = opts.role as RoleName;
        await withStore(address, async (store) => {
          const keys = await loadKeys(opts.keys);
          const next = await rotateKey({ store, keys }, role);
          await saveKey(opts.keys, role, next[role]!, keys[role]);
          const trusted = await readRepository(store);
          ctx.result(
            { repo: store.location, role, keyid: next[role]!.keyid, rootVersion: trusted.root.version },
            `${role} key rotated: new key ${next[role]!.keyid.slice(0, 16)}..., root version ${trusted.root.version}`,
          );
        });
      }),
    );

  repo
    .command('refresh')
    .description('re-sign the metadata with new expiry dates (run it daily: endpoints refuse expired metadata)')
    .argument('<repo>', 'the repository')
    .requiredOption('--keys <dir>', 'keys directory')
    .action(
      host.run(async (ctx, address: string, opts: { keys: string }) => {
        await withStore(address, async (store) => {
          const trusted = await refreshRepository({ store, keys: await loadKeys(opts.keys) });
          ctx.result(
            { repo: store.location, timestampExpires: trusted.timestamp.expires },
            `metadata re-signed; timestamp valid until ${trusted.timestamp.expires}`,
          );
        });
      }),
    );

  repo
    .command('channel')
    .description('point a channel (stable, pilot, ...) of a workspace at a published version')
    .argument('<repo>', 'the repository')
    .argument('<workspace>', 'workspace name')
    .argument('<channel>', 'channel name')
    .argument('<version>', 'published version')
    .requiredOption('--keys <dir>', 'keys directory')
    .action(
      host.run(
        async (ctx, address: string, workspace: string, channel: string, version: string, opts: { keys: string }) => {
          await withStore(address, async (store) => {
            await setChannel({ store, keys: await loadKeys(opts.keys) }, workspace, channel, version);
            ctx.result({ workspace, channel, version }, `${workspace}: ${channel} -> ${version}`);
          });
        },
      ),
    );

  repo
    .command('list')
    .description('list the workspaces, versions and channels of a repository (signatures checked)')
    .argument('<repo>', 'the repository')
    .action(
      host.run(async (ctx, address: string) => {
        await withStore(address, async (store) => {
          const trusted = await readRepository(store);
          const versions = Object.entries(trusted.targets.targets).map(([path, f]) => ({ path, ...f.custom }));
          ctx.result(
            {
              repo: store.location,
              rootVersion: trusted.root.version,
              targetsVersion: trusted.targets.version,
              expires: trusted.timestamp.expires,
              versions,
            },
            versions.length === 0
              ? `${store.location}: no workspaces yet`
              : versions.map(
                  (v) =>
                    `${v.workspace} ${v.version}${v.channels.length ? ` [${v.channels.join(', ')}]` : ''}  ${(v.imageSize / 1048576).toFixed(1)} MiB`,
                ),
          );
        });
      }),
    );
}
