import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { InvalidInputError, pullWorkspace, type SyncProgress } from '@tandem/core';
import type { CliContext } from '../context.js';
import type { CommandHost } from '../program.js';
import { StateDir } from '../state.js';
import { atRestImages, envelopeKeyProvider } from './keys-files.js';

const MIB = 1024 * 1024;
const collect = (value: string, previous: string[]): string[] => [...previous, value];

interface PullFlags {
  version?: string;
  release?: string;
  channel?: string;
  seed: string[];
  dir?: string;
  root?: string;
  parallel?: string;
  retain?: string;
  maxRangeKib?: string;
  ranges: boolean;
  directReads: boolean;
  directIo: boolean;
  envelope?: string;
  luksIterTime?: string;
}

function count(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new InvalidInputError(`${name} ${JSON.stringify(value)}: expected a whole number of at least 1.`);
  return n;
}

/** Shows progress: a bar on a terminal, JSON lines with --json. */
function progressReporter(ctx: CliContext): { report: (p: SyncProgress) => void; stop: () => void } {
  if (ctx.json) return { report: (p) => ctx.line({ event: 'sync.progress', ...p }), stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    {
      format:
        ' {bar} {percentage}% | {fetched}/{needed} MiB fetched | {seeded} MiB from seeds | {speed} MiB/s | ETA {eta}',
      hideCursor: true,
      stream: process.stderr,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    report(p) {
      if (p.phase !== 'fetching' && !started) return;
      const payload = {
        fetched: (p.bytesFetched / MIB).toFixed(1),
        needed: (p.bytesNeeded / MIB).toFixed(1),
        seeded: ((p.bytesFromSeeds + p.bytesResumed) / MIB).toFixed(1),
        speed: (p.bytesPerSecond / MIB).toFixed(1),
        eta: p.etaMs === null ? '?' : `${Math.ceil(p.etaMs / 1000)}s`,
      };
      if (!started) {
        bar.start(Math.max(1, p.bytesNeeded), 0, payload);
        started = true;
      }
      bar.update(Math.min(p.bytesFetched, Math.max(1, p.bytesNeeded)), payload);
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}

/** `tandem pull REPO WORKSPACE [--version V | --channel C] [--seed FILE]...` */
export function registerPull(program: Command, host: CommandHost): void {
  program
    .command('pull')
    .description(
      'install a workspace version from a signed repository, fetching only what local seeds lack; switches atomically once verified',
    )
    .argument('<repo>', 'repository: http(s):// URL, s3://bucket/prefix, file:// or a directory')
    .argument('<workspace>', 'workspace name in the repository')
    .option('--version <v>', 'this exact version')
    .option('--release <v>', 'the same as --version')
    .option('--channel <name>', 'the version this channel points at (default: stable, else the highest)')
    .option('--seed <file>', 'another file to take chunks from (an older image); repeatable', collect, [])
    .option('--dir <dir>', 'install directory (default <state-dir>/workspaces/<workspace>)')
    .option('--root <file>', "the repository's root.json, obtained out of band; needed on the first pull")
    .option('--parallel <n>', 'requests in flight (default 8)')
    .option('--retain <n>', 'versions to keep, the installed one included (default 2)')
    .option('--max-range-kib <KiB>', 'largest merged range request, in KiB (default 8192)')
    .option('--no-ranges', 'the server does not serve byte ranges: read whole pack files')
    .option('--no-direct-reads', 'read every answer through node:http (no reads straight into range buffers)')
    .option('--no-direct-io', 'write and read the new image through the page cache only (no O_DIRECT)')
    .option(
      '--envelope <file>',
      'the key envelope of an encrypted workspace (default: <state-dir>/envelopes/<image>.envelope)',
    )
    .option(
      '--luks-iter-time <ms>',
      "key-derivation time of an encrypted workspace's LUKS image at rest, in ms (default qemu-img's 2000)",
    )
    .action(
      host.run(async (ctx, repo: string, workspace: string, opts: PullFlags) => {
        const version = opts.version ?? opts.release;
        if (version !== undefined && opts.channel !== undefined)
          throw new InvalidInputError('Give --version or --channel, not both.');
        const dir = opts.dir ?? join(ctx.stateDir, 'workspaces', workspace);
        const trustedRoot = opts.root ? await readFile(opts.root) : undefined;
        const parallel = count(opts.parallel, '--parallel');
        const retain = count(opts.retain, '--retain');
        const maxRangeKib = count(opts.maxRangeKib, '--max-range-kib');
        // Disks that defined VMs still use (a session not yet restarted on a newer version).
        const inUse = new StateDir(ctx.stateDir).list().flatMap((r) => (r.vmSpec?.disks ?? []).map((d) => d.path));
        const progress = progressReporter(ctx);
        let result;
        try {
          result = await pullWorkspace({
            repo,
            workspace,
            dir,
            ...(version !== undefined ? { version } : {}),
            ...(opts.channel !== undefined ? { channel: opts.channel } : {}),
            seeds: opts.seed,
            ...(trustedRoot ? { trustedRoot } : {}),
            ...(parallel !== undefined ? { parallel } : {}),
            ...(retain !== undefined ? { retain } : {}),
            inUse,
            ...(maxRangeKib !== undefined ? { maxRangeBytes: maxRangeKib * 1024 } : {}),
            storeOptions: { ranges: opts.ranges, directReads: opts.directReads },
            directIo: opts.directIo,
            key: envelopeKeyProvider(ctx.stateDir, opts.envelope),
            encryptedImages: atRestImages(count(opts.luksIterTime, '--luks-iter-time')),
            onProgress: progress.report,
          });
        } finally {
          progress.stop();
        }
        const r = result;
        ctx.result({ event: 'sync.completed', ...r, dir }, [
          r.upToDate
            ? `${workspace} ${r.version} is already installed in ${dir}`
            : `${workspace} ${r.version} installed in ${dir}${r.previousVersion ? ` (was ${r.previousVersion})` : ''}`,
          `image ${(r.bytesTotal / MIB).toFixed(1)} MiB: ${(r.bytesFetched / MIB).toFixed(1)} MiB fetched in ${r.requests} requests, ${(r.bytesFromSeeds / MIB).toFixed(1)} MiB from seeds, ${(r.bytesResumed / MIB).toFixed(1)} MiB resumed, ${(r.bytesSaved / MIB).toFixed(1)} MiB saved`,
          ...(r.chunksFromDeltas + r.deltasRejected > 0
            ? [
                `${r.chunksFromDeltas} chunks rebuilt from deltas${r.deltasRejected ? `, ${r.deltasRejected} deltas did not rebuild their chunk (fetched whole instead)` : ''}`,
              ]
            : []),
          `workspace file: ${r.workspaceFile}`,
        ]);
      }),
    );
}
