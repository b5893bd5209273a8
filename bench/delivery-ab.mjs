// Cold pull A/B (issue 18): does the delta code slow a cold pull down? This tree's @tandem/core
// against another checkout's (the last commit before near-duplicate deltas landed), pulling the
// same image from the same repository over the same loopback HTTP server, alternating, in the
// same minutes. Each pull runs in a child process of its own (so neither tree's worker threads or
// caches help the other) into an empty directory, after `sync`; the child reports its wall time
// and its CPU time (user + system, all threads).
//
//   git worktree add /tmp/prev <sha> && ln -s "$PWD/node_modules" /tmp/prev/node_modules
//   (cd /tmp/prev && npx tsc -b packages/core) && npx tsc -b packages/core
//   node bench/delivery-ab.mjs --compare-tree /tmp/prev [--mib 1024] [--runs 3]
//   (or TANDEM_BENCH_COMPARE_TREE=/tmp/prev npm run bench -- delivery-ab)
//
// The image is bench/delivery's version 1 (bench/lib/images.mjs), packed and pushed by this tree.
import { execSync, spawn } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import os from 'node:os';
import { benchImages } from './lib/images.mjs';

const MIB = 1024 * 1024;
const flag = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const coreOf = (tree) => pathToFileURL(join(resolve(tree), 'packages/core/dist/index.js')).href;

// A child: one cold pull with the given tree's core, then its figures as one line of JSON.
if (process.argv[2] === '--pull-once') {
  const [, , , tree, repo, dir, rootFile] = process.argv;
  const { pullWorkspace } = await import(coreOf(tree));
  const { readFile } = await import('node:fs/promises');
  const trustedRoot = new Uint8Array(await readFile(rootFile));
  const cpu = process.cpuUsage();
  const t = performance.now();
  const result = await pullWorkspace({ repo, workspace: 'bench', dir, trustedRoot });
  const ms = performance.now() - t;
  const used = process.cpuUsage(cpu);
  process.stdout.write(
    JSON.stringify({ ms, cpuMs: (used.user + used.system) / 1000, sha256: result.imageSha256 }) + '\n',
  );
  process.exit(0);
}

const other = flag('compare-tree') ?? process.env.TANDEM_BENCH_COMPARE_TREE;
if (!other) {
  console.error('usage: node bench/delivery-ab.mjs --compare-tree <checkout> [--mib 1024] [--runs 3]');
  console.error('  <checkout>: another git worktree of this repository with packages/core built');
  process.exit(2);
}
const SIZE = Number(flag('mib') ?? 1024) * MIB;
const RUNS = Math.max(1, Number(flag('runs') ?? 3));
const OUT = resolve('bench/out/delivery-ab');
const trees = { current: resolve('.'), previous: resolve(other) };

const { DirectoryStore, initRepository, packWorkspace, pushPackage } = await import(coreOf(trees.current));

await rm(OUT, { recursive: true, force: true });
await mkdir(join(OUT, 'v1'), { recursive: true });
console.error(`generating a ${SIZE / MIB} MiB image ...`);
const { v1 } = benchImages(SIZE, 0.02);
await writeFile(join(OUT, 'v1/disk.img'), v1);
await writeFile(
  join(OUT, 'v1/tandem.workspace.yaml'),
  `apiVersion: tandem/v1\nkind: Workspace\nmetadata: { name: bench, version: 1.0.0 }\nspec:\n  image: { source: ./disk.img, format: raw }\n  hardware:\n    memory: { fixedMiB: 1024 }\n`,
);
await packWorkspace({ workspaceFile: join(OUT, 'v1/tandem.workspace.yaml'), out: join(OUT, 'v1.tandem') });
const store = new DirectoryStore(join(OUT, 'repo'));
const { keys, root } = await initRepository({ store });
await pushPackage({ package: join(OUT, 'v1.tandem'), store, keys, channels: ['stable'] });
await writeFile(join(OUT, 'root.json'), root);
await rm(join(OUT, 'v1'), { recursive: true, force: true });

const server = spawn(process.execPath, [resolve('bench/lib/static-server.mjs'), OUT], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const port = await new Promise((r) => server.stdout.once('data', (d) => r(Number(String(d).trim()))));
const repo = `http://127.0.0.1:${port}/repo/`;

const pullOnce = (tree) =>
  new Promise((done, fail) => {
    const child = spawn(
      process.execPath,
      [resolve('bench/delivery-ab.mjs'), '--pull-once', tree, repo, join(OUT, 'endpoint'), join(OUT, 'root.json')],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', fail);
    child.on('exit', (code) =>
      code === 0 ? done(JSON.parse(out)) : fail(new Error(`the pull with ${tree} exited with ${code}`)),
    );
  });

// Alternating, and the order flipped every run (ABBA...), so neither tree always pulls first.
const runs = { current: [], previous: [] };
let sha;
for (let i = 0; i < RUNS; i++) {
  const order = i % 2 === 0 ? ['current', 'previous'] : ['previous', 'current'];
  for (const which of order) {
    await rm(join(OUT, 'endpoint'), { recursive: true, force: true });
    execSync('sync');
    const r = await pullOnce(trees[which]);
    sha ??= r.sha256;
    if (r.sha256 !== sha) throw new Error(`the ${which} tree pulled a different image`);
    runs[which].push({ ...r, load: os.loadavg()[0] });
    console.error(`${which}: ${(r.ms / 1000).toFixed(2)} s wall, ${(r.cpuMs / 1000).toFixed(2)} s CPU`);
  }
}
server.kill();
await rm(join(OUT, 'endpoint'), { recursive: true, force: true });
await writeFile(join(OUT, '..', 'delivery-ab.json'), JSON.stringify({ size: SIZE, trees, runs }, null, 2));

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rate = (ms) => `${(SIZE / MIB / (ms / 1000)).toFixed(0)} MiB/s`;
console.log(`cold pull of a ${SIZE / MIB} MiB image, loopback HTTP, ${RUNS} runs each, alternating`);
console.log('');
console.log('| tree | median wall | each run (wall) | median CPU | each run (CPU) |');
console.log('|---|---|---|---|---|');
for (const which of ['current', 'previous']) {
  const rs = runs[which];
  console.log(
    `| ${which} (${trees[which]}) | ${rate(median(rs.map((r) => r.ms)))} | ${rs.map((r) => `${(r.ms / 1000).toFixed(2)} s`).join(', ')} | ${(median(rs.map((r) => r.cpuMs)) / 1000).toFixed(2)} s | ${rs.map((r) => `${(r.cpuMs / 1000).toFixed(2)} s`).join(', ')} |`,
  );
}
const ratio = median(runs.current.map((r) => r.ms)) / median(runs.previous.map((r) => r.ms));
console.log('');
console.log(
  `current / previous, median wall: ${ratio.toFixed(2)}; load average (1 min) during the runs: ${[...runs.current, ...runs.previous].map((r) => r.load.toFixed(1)).join(', ')}`,
);
