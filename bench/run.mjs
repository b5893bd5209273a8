// The benchmark runner behind `npm run bench`. Every benchmark is its own script in this folder
// and prints its figures (see docs/benchmarks.md for what each measures and the recorded runs).
//
//   npm run bench                    # lists the benchmarks and what each needs
//   npm run bench -- policy-urls     # runs one (after `npx tsc -b`), passing on further arguments
//   npm run bench -- all             # runs every benchmark whose needs are met here, in turn
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** name, what it measures, and what it needs (checked before `all` runs it). */
const BENCHES = [
  { name: 'policy-urls', what: 'web redirection matcher against a linear scan (issue 5)', needs: [] },
  {
    name: 'delivery',
    what: 'delta sync bytes (whole-chunk edits and small in-place edits with deltas) and pack/push/pull speed against casync and rsync (issues 6, 18)',
    needs: ['casync', 'rsync'],
  },
  {
    name: 'delivery-ab',
    what: 'cold pull (wall and CPU) of this tree against another checkout, e.g. the code before deltas (issue 18)',
    needs: ['compare-tree'],
  },
  {
    name: 'crypto',
    what: 'chunk encryption against raw AES-GCM; encrypted against plaintext pulls (issue 11)',
    needs: ['qemu-img', 'qemu-nbd'],
  },
  {
    name: 'crypto-cold',
    what: "the encrypted cold pull phase by phase, plaintext and both layouts, qemu-img's LUKS header against Tandem's (issue 11)",
    needs: ['qemu-img', 'qemu-nbd'],
  },
  {
    name: 'libvirt-lifecycle',
    what: 'lifecycle through the libvirt adapter against raw virsh (issue 3)',
    needs: ['virsh', 'root'],
  },
  { name: 'guest-protocol', what: 'guest-agent handshake and round trips over a relay (issue 12)', needs: [] },
  {
    name: 'test-guest',
    what: 'the real test guest: build, size, start to the agent hello (issue 12)',
    needs: ['virsh', 'root'],
  },
  {
    name: 'server-store',
    what: 'event ingestion through the server store against COPY (issue 15)',
    needs: ['postgres'],
  },
  { name: 'server', what: 'sustained signed check-ins against server processes (issue 15)', needs: ['postgres'] },
  {
    name: 'server-pg-checkin',
    what: "PostgreSQL's own CPU per check-in write, by group size (issue 15)",
    needs: ['postgres'],
  },
  { name: 'server-parts', what: 'the CPU cost of each piece of a check-in, alone (issue 15)', needs: [] },
  {
    name: 'console-endpoints',
    what: "the console's endpoint table at tens of thousands of devices (issue 16)",
    needs: [],
  },
];

function missing(need) {
  if (need === 'compare-tree')
    return process.env.TANDEM_BENCH_COMPARE_TREE
      ? null
      : 'TANDEM_BENCH_COMPARE_TREE (another built checkout) is not set';
  if (need === 'root') return process.getuid?.() === 0 ? null : 'not root';
  if (need === 'postgres')
    return process.env.TANDEM_TEST_POSTGRES || process.env.TANDEM_BENCH_POSTGRES
      ? null
      : 'TANDEM_TEST_POSTGRES is not set';
  const found = spawnSync('sh', ['-c', `command -v ${need}`], { stdio: 'ignore' }).status === 0;
  return found ? null : `${need} is not installed`;
}

function run(bench, args) {
  console.log(`\n== bench/${bench.name}.mjs ${args.join(' ')}`);
  const result = spawnSync(process.execPath, [join(here, `${bench.name}.mjs`), ...args], { stdio: 'inherit' });
  return result.status ?? 1;
}

const [which, ...rest] = process.argv.slice(2);
if (!existsSync(join(here, '..', 'packages', 'core', 'dist', 'index.js'))) {
  console.error('The benchmarks run against the built packages: run `npx tsc -b` first.');
  process.exit(2);
}
if (!which) {
  console.log('Benchmarks (npm run bench -- NAME [ARGS], or `all`):');
  for (const b of BENCHES) {
    const why = b.needs.map(missing).filter(Boolean);
    console.log(`  ${b.name.padEnd(18)} ${b.what}${why.length ? `  [cannot run here: ${why.join(', ')}]` : ''}`);
  }
  process.exit(0);
}
if (which === 'all') {
  let failed = 0;
  for (const b of BENCHES) {
    const why = b.needs.map(missing).filter(Boolean);
    if (why.length) console.log(`\n== bench/${b.name}.mjs skipped: ${why.join(', ')}`);
    else if (run(b, rest) !== 0) failed++;
  }
  process.exit(failed ? 1 : 0);
}
const bench = BENCHES.find((b) => b.name === which);
if (!bench) {
  console.error(`No benchmark named "${which}". Expected one of: ${BENCHES.map((b) => b.name).join(', ')}, or all.`);
  process.exit(2);
}
process.exit(run(bench, rest));
