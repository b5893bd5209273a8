// Delivery benchmark (issue 6): one run, side by side.
//
// A generated disk-like image (random data with runs of zeros, 1 GiB by default) and a second
// version with 2% of it changed in scattered inserts and overwrites. Measures, in the same run:
// - bytes transferred from version 1 to version 2 by Tandem (pull over loopback HTTP), by casync
//   (same 16/64/256 KiB chunk sizes, its store served by the same loopback HTTP server, v1 as
//   seed) and by rsync (daemon on loopback, v1 as the basis file); and the number of requests;
// - pack throughput of `tandem pack` against `casync make` on the same image;
// - pull throughput of cold pulls of version 1 from loopback HTTP (--pulls of them, 3 by default,
//   each into an empty directory; every one is printed, and the median).
// Run against the built dist of @tandem/core (needs casync and rsync from Debian):
//
//   npx tsc -b && node bench/delivery.mjs [--mib 1024] [--changed 0.02] [--pulls 3]
import { execFileSync, execSync, spawn } from 'node:child_process';
import { copyFile, mkdir, rm, writeFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DirectoryStore, initRepository, packWorkspace, pullWorkspace, pushPackage } from '@tandem/core';
import { benchImages } from './lib/images.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const MIB = 1024 * 1024;
const SIZE = arg('mib', 1024) * MIB;
const CHANGED = arg('changed', 0.02);
const PULLS = Math.max(1, arg('pulls', 3));
const OUT = resolve('bench/out/delivery');

const fmt = (n) => (n / MIB).toFixed(1) + ' MiB';
const rate = (bytes, ms) => (bytes / MIB / (ms / 1000)).toFixed(0) + ' MiB/s';
const time = async (fn) => {
  const t = performance.now();
  const value = await fn();
  return { ms: performance.now() - t, value };
};

async function startServer(root) {
  const child = spawn(process.execPath, [resolve('bench/lib/static-server.mjs'), root], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise((r) => child.stdout.once('data', (d) => r(Number(String(d).trim()))));
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    stats: async () => (await fetch(`${url}/__stats`)).json(),
    reset: async () => (await fetch(`${url}/__reset`)).json(),
    stop: () => child.kill(),
  };
}

const workspace = (name, version) =>
  `apiVersion: tandem/v1\nkind: Workspace\nmetadata: { name: ${name}, version: ${version} }\nspec:\n  image: { source: ./disk.img, format: raw }\n  hardware:\n    memory: { fixedMiB: 1024 }\n`;

await rm(OUT, { recursive: true, force: true });
for (const d of ['v1', 'v2', 'repo', 'endpoint', 'casync', 'rsync/module', 'rsync/client'])
  await mkdir(join(OUT, d), { recursive: true });
console.error(`generating a ${fmt(SIZE)} image and a version with ${CHANGED * 100}% changed ...`);
const { v1, v2, changed, edits } = benchImages(SIZE, CHANGED);
await writeFile(join(OUT, 'v1/disk.img'), v1);
await writeFile(join(OUT, 'v2/disk.img'), v2);
await writeFile(join(OUT, 'v1/tandem.workspace.yaml'), workspace('bench', '1.0.0'));
await writeFile(join(OUT, 'v2/tandem.workspace.yaml'), workspace('bench', '2.0.0'));
const results = { imageBytes: SIZE, v2Bytes: v2.length, changedBytes: changed, edits };
// Every measurement starts with clean page-cache writeback, so no tool pays for another's writes.
const settle = () => execSync('sync');
settle();

// --- Tandem: pack, push, pull v1 (cold), pull v2 (delta) ---
settle();
const pack1 = await time(() =>
  packWorkspace({ workspaceFile: join(OUT, 'v1/tandem.workspace.yaml'), out: join(OUT, 'v1.tandem') }),
);
const pack2 = await time(() =>
  packWorkspace({ workspaceFile: join(OUT, 'v2/tandem.workspace.yaml'), out: join(OUT, 'v2.tandem') }),
);
const store = new DirectoryStore(join(OUT, 'repo'));
const { keys, root } = await initRepository({ store });
await pushPackage({ package: join(OUT, 'v1.tandem'), store, keys, channels: ['stable'] });
const server = await startServer(join(OUT));
const dir = join(OUT, 'endpoint');
// Cold pulls of v1, each into an empty endpoint directory (the first one follows pack and push;
// each later one follows the removal of the previous endpoint's copy).
const pulls = [];
let s1;
for (let i = 0; i < PULLS; i++) {
  await rm(dir, { recursive: true, force: true });
  await server.reset();
  settle();
  pulls.push(
    await time(() => pullWorkspace({ repo: `${server.url}/repo/`, workspace: 'bench', dir, trustedRoot: root })),
  );
  s1 = await server.stats();
}
const pullMs = pulls.map((p) => p.ms);
const medianPullMs = [...pullMs].sort((a, b) => a - b)[Math.floor(pullMs.length / 2)];
await pushPackage({ package: join(OUT, 'v2.tandem'), store, keys, channels: ['stable'] });
await server.reset();
settle();
const pull2 = await time(() => pullWorkspace({ repo: `${server.url}/repo/`, workspace: 'bench', dir }));
const s2 = await server.stats();
results.tandem = {
  packMs: pack1.ms,
  packMiBs: SIZE / MIB / (pack1.ms / 1000),
  pullV1Ms: medianPullMs,
  pullV1MiBs: SIZE / MIB / (medianPullMs / 1000),
  pullV1RunsMs: pullMs,
  pullV1Bytes: s1.bytes,
  pullV1Requests: s1.requests,
  deltaBytes: s2.bytes,
  deltaRequests: s2.requests,
  deltaMs: pull2.ms,
  fromSeeds: pull2.value.bytesFromSeeds,
};

// --- casync: make v1 and v2 into one store, extract v2 over HTTP with v1 as seed ---
const casync = (args) => execFileSync('casync', args, { stdio: ['ignore', 'ignore', 'inherit'] });
const cs = join(OUT, 'casync');
settle();
const make1 = await time(() =>
  casync([
    'make',
    `--store=${cs}/store.castr`,
    '--chunk-size=16384:65536:262144',
    `${cs}/v1.caibx`,
    join(OUT, 'v1/disk.img'),
  ]),
);
casync([
  'make',
  `--store=${cs}/store.castr`,
  '--chunk-size=16384:65536:262144',
  `${cs}/v2.caibx`,
  join(OUT, 'v2/disk.img'),
]);
await copyFile(join(OUT, 'v1/disk.img'), join(cs, 'seed.img'));
await server.reset();
settle();
const extract = await time(() =>
  casync([
    'extract',
    `--store=${server.url}/casync/store.castr`,
    `--seed=${cs}/seed.img`,
    `${server.url}/casync/v2.caibx`,
    `${cs}/out.img`,
  ]),
);
const sc = await server.stats();
results.casync = {
  makeMs: make1.ms,
  makeMiBs: SIZE / MIB / (make1.ms / 1000),
  deltaBytes: sc.bytes,
  deltaRequests: sc.requests,
  deltaMs: extract.ms,
};
const ok = execFileSync('cmp', [join(cs, 'out.img'), join(OUT, 'v2/disk.img')]).length === 0;
if (!ok) throw new Error('casync produced a different image');
server.stop();

// --- rsync: daemon on loopback, v1 as the basis of v2 ---
const rs = join(OUT, 'rsync');
await copyFile(join(OUT, 'v2/disk.img'), join(rs, 'module/disk.img'));
await copyFile(join(OUT, 'v1/disk.img'), join(rs, 'client/disk.img'));
const port = 28000 + Math.floor(Math.random() * 1000);
await writeFile(join(rs, 'rsyncd.conf'), `use chroot = no\n[bench]\n  path = ${rs}/module\n  read only = yes\n`);
const daemon = spawn(
  'rsync',
  ['--daemon', '--no-detach', `--config=${rs}/rsyncd.conf`, `--port=${port}`, '--address=127.0.0.1'],
  { stdio: 'ignore' },
);
await new Promise((r) => setTimeout(r, 500));
settle();
const rsync = await time(() =>
  execFileSync(
    'rsync',
    ['--stats', '--no-whole-file', `rsync://127.0.0.1:${port}/bench/disk.img`, join(rs, 'client/disk.img')],
    { encoding: 'utf8' },
  ),
);
daemon.kill();
const received = Number(/Total bytes received: ([\d,]+)/.exec(rsync.value)[1].replace(/,/g, ''));
results.rsync = { deltaBytes: received, deltaMs: rsync.ms };
execFileSync('cmp', [join(rs, 'client/disk.img'), join(OUT, 'v2/disk.img')]);
await writeFile(join(OUT, '..', 'delivery.json'), JSON.stringify(results, null, 2));

const t = results.tandem;
const c = results.casync;
console.log(`image ${fmt(SIZE)}, v2 ${fmt(v2.length)}, changed ${fmt(changed)} in ${edits} edits`);
console.log('');
console.log('| v1 -> v2 | bytes transferred | x changed bytes | requests | time |');
console.log('|---|---|---|---|---|');
console.log(
  `| Tandem (HTTP, metadata included) | ${fmt(t.deltaBytes)} | ${(t.deltaBytes / changed).toFixed(2)} | ${t.deltaRequests} | ${(t.deltaMs / 1000).toFixed(1)} s |`,
);
console.log(
  `| casync (HTTP, index included) | ${fmt(c.deltaBytes)} | ${(c.deltaBytes / changed).toFixed(2)} | ${c.deltaRequests} | ${(c.deltaMs / 1000).toFixed(1)} s |`,
);
console.log(
  `| rsync (daemon) | ${fmt(results.rsync.deltaBytes)} | ${(results.rsync.deltaBytes / changed).toFixed(2)} | 1 session | ${(results.rsync.deltaMs / 1000).toFixed(1)} s |`,
);
console.log('');
console.log('| throughput | figure |');
console.log('|---|---|');
console.log(`| tandem pack (v1) | ${rate(SIZE, t.packMs)} (${(t.packMs / 1000).toFixed(1)} s) |`);
console.log(`| casync make (v1) | ${rate(SIZE, c.makeMs)} (${(c.makeMs / 1000).toFixed(1)} s) |`);
console.log(
  `| tandem pull v1, cold, loopback HTTP, median of ${PULLS} | ${rate(SIZE, t.pullV1Ms)} of image (${fmt(t.pullV1Bytes)} fetched in ${t.pullV1Requests} requests, ${(t.pullV1Ms / 1000).toFixed(1)} s) |`,
);
console.log(
  `| tandem pull v1, each cold pull in order | ${t.pullV1RunsMs.map((ms) => `${rate(SIZE, ms)} (${(ms / 1000).toFixed(1)} s)`).join(', ')} |`,
);
