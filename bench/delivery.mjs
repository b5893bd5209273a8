// Delivery benchmark (issue 6): one run, side by side.
//
// A generated disk-like image (random data with runs of zeros, 1 GiB by default) and a second
// version with 2% of it changed in scattered inserts and overwrites. Measures, in the same run:
// - bytes transferred from version 1 to version 2 by Tandem (pull over loopback HTTP), by casync
//   (same 16/64/256 KiB chunk sizes, its store served by the same loopback HTTP server, v1 as
//   seed) and by rsync (daemon on loopback, v1 as the basis file); and the number of requests;
// - pack throughput of `tandem pack` against `casync make` on the same image;
// - pull throughput of cold pulls of version 1 from loopback HTTP (--pulls of them, 3 by default,
//   each into an empty directory; every one is printed, and the median);
// - a second update (issue 18, "small edits"): version 1 with 2% of its 4 KiB pages rewritten in
//   place with a few bytes changed each (scattered, no shifts) plus a few new 1 MiB files written
//   into free (zero) space; bytes fetched by Tandem with deltas, Tandem without (`deltas: false`),
//   casync and rsync on that pair; push time of that version with resemblance detection and
//   without, and the CPU time of the two pulls.
// Run against the built dist of @tandem/core (needs casync and rsync from Debian):
//
//   npx tsc -b && node bench/delivery.mjs [--mib 1024] [--changed 0.02] [--pulls 3]
import { execFileSync, execSync, spawn } from 'node:child_process';
import { copyFile, mkdir, rm, writeFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DirectoryStore, initRepository, packWorkspace, pullWorkspace, pushPackage } from '@tandem/core';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { benchImages, pseudoRandom } from './lib/images.mjs';

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
  // A connection of its own each time: a kept-alive one can be closed by the server (idle for its
  // keep-alive timeout while casync makes its store) just as the next request goes out on it.
  const ask = (path) =>
    new Promise((done, fail) =>
      http
        .get(`${url}${path}`, { agent: false }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => done(JSON.parse(body)));
        })
        .on('error', fail),
    );
  return {
    url,
    stats: () => ask('/__stats'),
    reset: () => ask('/__reset'),
    stop: () => child.kill(),
  };
}

const workspace = (name, version) =>
  `apiVersion: tandem/v1\nkind: Workspace\nmetadata: { name: ${name}, version: ${version} }\nspec:\n  image: { source: ./disk.img, format: raw }\n  hardware:\n    memory: { fixedMiB: 1024 }\n`;

await rm(OUT, { recursive: true, force: true });
for (const d of [
  'v1',
  'v2',
  'v3',
  'repo',
  'repo-b',
  'repo-b-nodelta',
  'endpoint',
  'casync',
  'rsync/module',
  'rsync/client',
])
  await mkdir(join(OUT, d), { recursive: true });
console.error(`generating a ${fmt(SIZE)} image and a version with ${CHANGED * 100}% changed ...`);
const { v1, v2, changed, edits } = benchImages(SIZE, CHANGED);
await writeFile(join(OUT, 'v1/disk.img'), v1);
await writeFile(join(OUT, 'v2/disk.img'), v2);
await writeFile(join(OUT, 'v1/tandem.workspace.yaml'), workspace('bench', '1.0.0'));
await writeFile(join(OUT, 'v2/tandem.workspace.yaml'), workspace('bench', '2.0.0'));
const small = smallEdits(v1);
await writeFile(join(OUT, 'v3/disk.img'), small.image);
await writeFile(join(OUT, 'v3/tandem.workspace.yaml'), workspace('bench-b', '2.0.0'));
await writeFile(join(OUT, 'v1/tandem-b.workspace.yaml'), workspace('bench-b', '1.0.0'));
const results = {
  imageBytes: SIZE,
  v2Bytes: v2.length,
  changedBytes: changed,
  edits,
  small: { pages: small.pages, changedBytes: small.changedBytes, newFiles: small.files },
};
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
const push2 = await time(() => pushPackage({ package: join(OUT, 'v2.tandem'), store, keys, channels: ['stable'] }));
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
  chunksFromDeltas: pull2.value.chunksFromDeltas,
  pushV2Ms: push2.ms,
  pushV2Deltas: push2.value.deltas,
};

// --- Tandem, small edits: v1 -> v3 with deltas (repo-b) and without (repo-b-nodelta) ---
const packB1 = join(OUT, 'v1b.tandem');
await packWorkspace({ workspaceFile: join(OUT, 'v1/tandem-b.workspace.yaml'), out: packB1 });
const packB2 = join(OUT, 'v3.tandem');
await packWorkspace({ workspaceFile: join(OUT, 'v3/tandem.workspace.yaml'), out: packB2 });
const smallRun = async (name, deltas) => {
  const s = new DirectoryStore(join(OUT, name));
  const init = await initRepository({ store: s });
  settle();
  const first = await time(() =>
    pushPackage({ package: packB1, store: s, keys: init.keys, channels: ['stable'], deltas }),
  );
  settle();
  const second = await time(() =>
    pushPackage({ package: packB2, store: s, keys: init.keys, channels: ['stable'], deltas }),
  );
  const at = join(OUT, `endpoint-${name}`);
  await rm(at, { recursive: true, force: true });
  await pullWorkspace({
    repo: `${server.url}/${name}/`,
    workspace: 'bench-b',
    dir: at,
    version: '1.0.0',
    trustedRoot: init.root,
  });
  await server.reset();
  settle();
  const cpu = process.cpuUsage();
  const pulled = await time(() =>
    pullWorkspace({ repo: `${server.url}/${name}/`, workspace: 'bench-b', dir: at, version: '2.0.0' }),
  );
  const used = process.cpuUsage(cpu);
  const st = await server.stats();
  if (pulled.value.imageSha256 !== small.sha256) throw new Error('tandem produced a different small-edits image');
  await rm(at, { recursive: true, force: true });
  return {
    pushV1Ms: first.ms,
    pushMs: second.ms,
    deltas: second.value.deltas,
    deltaBytesStored: second.value.deltaBytes,
    bytes: st.bytes,
    requests: st.requests,
    pullMs: pulled.ms,
    pullCpuMs: (used.user + used.system) / 1000,
    chunksFromDeltas: pulled.value.chunksFromDeltas,
    chunksFetched: pulled.value.chunksFetched,
  };
};
results.small.tandem = await smallRun('repo-b', undefined);
results.small.tandemNoDeltas = await smallRun('repo-b-nodelta', false);

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
casync([
  'make',
  `--store=${cs}/store.castr`,
  '--chunk-size=16384:65536:262144',
  `${cs}/v3.caibx`,
  join(OUT, 'v3/disk.img'),
]);
await server.reset();
settle();
casync([
  'extract',
  `--store=${server.url}/casync/store.castr`,
  `--seed=${cs}/seed.img`,
  `${server.url}/casync/v3.caibx`,
  `${cs}/out3.img`,
]);
results.small.casync = { bytes: (await server.stats()).bytes };
execFileSync('cmp', [join(cs, 'out3.img'), join(OUT, 'v3/disk.img')]);
server.stop();

// --- rsync: daemon on loopback, v1 as the basis of v2 (and of v3) ---
const rsyncRun = async (target) => {
  const rs = join(OUT, 'rsync');
  await copyFile(join(OUT, target, 'disk.img'), join(rs, 'module/disk.img'));
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
      [
        '--stats',
        '--no-whole-file',
        '--ignore-times',
        `rsync://127.0.0.1:${port}/bench/disk.img`,
        join(rs, 'client/disk.img'),
      ],
      { encoding: 'utf8' },
    ),
  );
  daemon.kill();
  execFileSync('cmp', [join(rs, 'client/disk.img'), join(OUT, target, 'disk.img')]);
  const received = Number(/Total bytes received: ([\d,]+)/.exec(rsync.value)[1].replace(/,/g, ''));
  return { deltaBytes: received, deltaMs: rsync.ms };
};
results.rsync = await rsyncRun('v2');
results.small.rsync = { bytes: (await rsyncRun('v3')).deltaBytes };
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
const b = results.small;
console.log(
  `small edits: ${b.pages} of ${SIZE / 4096} pages (2%) with a few bytes changed in place, ${b.newFiles} new 1 MiB files; ${fmt(b.changedBytes)} of bytes differ`,
);
console.log('');
console.log('| v1 -> small edits | bytes transferred | x casync | requests |');
console.log('|---|---|---|---|');
const vsC = (n) => (n / b.casync.bytes).toFixed(3);
console.log(`| Tandem with deltas | ${fmt(b.tandem.bytes)} | ${vsC(b.tandem.bytes)} | ${b.tandem.requests} |`);
console.log(
  `| Tandem without deltas | ${fmt(b.tandemNoDeltas.bytes)} | ${vsC(b.tandemNoDeltas.bytes)} | ${b.tandemNoDeltas.requests} |`,
);
console.log(`| casync | ${fmt(b.casync.bytes)} | 1.000 | |`);
console.log(`| rsync (daemon) | ${fmt(b.rsync.bytes)} | ${vsC(b.rsync.bytes)} | 1 session |`);
console.log('');
console.log('| cost of deltas (small edits) | with deltas | without | ratio |');
console.log('|---|---|---|---|');
const row = (what, x, y, unit = ' s', k = 1000) =>
  console.log(`| ${what} | ${(x / k).toFixed(2)}${unit} | ${(y / k).toFixed(2)}${unit} | ${(x / y).toFixed(2)} |`);
row('push v1 (sketches computed)', b.tandem.pushV1Ms, b.tandemNoDeltas.pushV1Ms);
row('push the small-edits version', b.tandem.pushMs, b.tandemNoDeltas.pushMs);
row('pull v1 -> small edits, wall', b.tandem.pullMs, b.tandemNoDeltas.pullMs);
row('pull v1 -> small edits, CPU of the pulling process', b.tandem.pullCpuMs, b.tandemNoDeltas.pullCpuMs);
console.log(
  `(${b.tandem.deltas} deltas stored, ${fmt(b.tandem.deltaBytesStored)}; the pull rebuilt ${b.tandem.chunksFromDeltas} chunks from deltas and fetched ${b.tandem.chunksFetched} whole)`,
);
console.log(
  `first scenario: push of v2 ${(t.pushV2Ms / 1000).toFixed(1)} s with ${t.pushV2Deltas} deltas; the pull rebuilt ${t.chunksFromDeltas} chunks from deltas`,
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

/**
 * The small-edits version of `v1`: 2% of its 4 KiB pages (scattered, chosen by a fixed
 * generator) each get 8 bytes changed at one place in the page, in place; and 4 new 1 MiB files
 * land in free (zero) space.
 */
function smallEdits(v1) {
  let seed = 0x1234_5678;
  const rand = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const image = Buffer.from(v1);
  const pageCount = Math.floor(image.length / 4096);
  let changedBytes = 0;
  // New files first, into space that is free (zeros) in v1.
  let files = 0;
  for (let tries = 0; files < 4 && tries < 100000; tries++) {
    const at = Math.floor(rand() * (pageCount - 256)) * 4096;
    if (image.subarray(at, at + MIB).some((b) => b !== 0)) continue;
    pseudoRandom(MIB, `new-file-${files}`).copy(image, at);
    files++;
    changedBytes += MIB;
  }
  const chosen = new Set();
  while (chosen.size < Math.round(pageCount * 0.02)) chosen.add(Math.floor(rand() * pageCount));
  for (const page of chosen) {
    const at = page * 4096 + Math.floor(rand() * (4096 - 8));
    for (let i = 0; i < 8; i++) image[at + i] = Math.floor(rand() * 256);
    changedBytes += 8;
  }
  return {
    image,
    pages: chosen.size,
    files,
    changedBytes,
    sha256: createHash('sha256').update(image).digest('hex'),
  };
}
