// Encrypted cold pull, phase by phase (issue 11): the first install of an encrypted workspace
// on an endpoint, straight into its LUKS image, against the plaintext pull of the same image over
// loopback HTTP, in the same run. Rows: plaintext; encrypted in the nbd layout (QEMU's LUKS
// through qemu-nbd); encrypted in the data-file layout with qemu-img's LUKS header (its PBKDF2
// calibration, the cost before Tandem wrote the header) and with the header Tandem writes (the
// default). Each encrypted store is wrapped to time its phases, as the wall-clock time at least
// one call of the phase was in flight: create (qcow2 + LUKS header), write (XTS, pwrite, hashing
// as written; in the nbd layout, NBD writes to qemu-nbd, which encrypts), read (the nbd layout's
// final check reads the image back), digest (what the data-file layout's final check still reads
// back), close (datasync, the zero clusters through qemu-io), relocate (qemu-img amend).
// The rest of a pull's time is fetching and decrypting the chunks (GCM, keyed ids) and the
// manifest; bench/crypto.mjs part 1 gives those per-buffer costs.
// Run against the built dist (needs qemu-utils):
//
//   npx tsc -b && node bench/crypto-cold.mjs [--mib 256] [--runs 3] [--modes plain,nbd,dfQemuHeader,df]
import { execSync, spawn } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { DirectoryStore, initRepository, packWorkspace, pullWorkspace, pushPackage } from '@tandem/core';
import { DataKey } from '@tandem/core/crypto';
import { libvirtEncryptedImages } from '@tandem/adapter-libvirt';
import { benchImages } from './lib/images.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const MIB = 1024 * 1024;
const SIZE = Number(arg('mib', 256)) * MIB;
const RUNS = Number(arg('runs', 3));
const MODES = arg('modes', 'plain,nbd,dfQemuHeader,df').split(',');
const OUT = resolve('bench/out/crypto-cold');
const mibs = (bytes, ms) => bytes / MIB / (ms / 1000);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const { v1 } = benchImages(SIZE, 0.02);
await rm(OUT, { recursive: true, force: true });
await mkdir(join(OUT, 'v1'), { recursive: true });
await writeFile(join(OUT, 'v1/disk.img'), v1);
const ws = (name) =>
  `apiVersion: tandem/v1\nkind: Workspace\nmetadata: { name: ${name}, version: 1.0.0 }\nspec:\n  image: { source: ./disk.img, format: raw }\n  hardware:\n    memory: { fixedMiB: 1024 }\n`;
for (const w of ['plain', 'enc']) await writeFile(join(OUT, 'v1', `${w}.workspace.yaml`), ws(w));
const dataKey = DataKey.generate();
const store = new DirectoryStore(join(OUT, 'repo'));
const { keys, root } = await initRepository({ store });
await packWorkspace({ workspaceFile: join(OUT, 'v1/plain.workspace.yaml'), out: join(OUT, 'plain.tandem') });
await packWorkspace({
  workspaceFile: join(OUT, 'v1/enc.workspace.yaml'),
  out: join(OUT, 'enc.tandem'),
  encryption: { dataKey },
});
for (const w of ['plain', 'enc'])
  await pushPackage({ package: join(OUT, `${w}.tandem`), store, keys, channels: ['stable'] });
const child = spawn(process.execPath, [resolve('bench/lib/static-server.mjs'), OUT], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
process.on('exit', () => child.kill());
const port = await new Promise((r) => child.stdout.once('data', (d) => r(Number(String(d).trim()))));
const url = `http://127.0.0.1:${port}`;

/** The phases of each create, per store: [{ create, write, digest, close, ... }] in ms. */
const phases = {};
const timed = (name, images) => {
  // Per phase, the time at least one call of it was in flight (writes queue up in the store:
  // summing each call's time would count the queueing many times over).
  const inFlight = {};
  const since = {};
  const clock = async (k, p) => {
    if (!inFlight[k]) since[k] = performance.now();
    inFlight[k] = (inFlight[k] ?? 0) + 1;
    try {
      return await p;
    } finally {
      if (--inFlight[k] === 0) {
        const cur = phases[name].at(-1);
        cur[k] = (cur[k] ?? 0) + performance.now() - since[k];
      }
    }
  };
  return {
    format: images.format,
    ...(images.relocate ? { relocate: (...a) => clock('relocate', images.relocate(...a)) } : {}),
    open: (...a) => images.open(...a),
    create: async (...a) => {
      (phases[name] ??= []).push({});
      const image = await clock('create', images.create(...a));
      return {
        get size() {
          return image.size;
        },
        read: (o, l) => clock('read', image.read(o, l)),
        write: (o, d) => clock('write', image.write(o, d)),
        ...(image.writeZeroes ? { writeZeroes: (o, l) => image.writeZeroes(o, l) } : {}),
        ...(image.digest ? { digest: (l) => clock('digest', image.digest(l)) } : {}),
        close: () => clock('close', image.close()),
      };
    },
  };
};
const all = {
  plain: { ws: 'plain', label: 'plaintext' },
  nbd: { ws: 'enc', label: 'encrypted, nbd layout', images: libvirtEncryptedImages({ luksIterTimeMs: 10 }) },
  dfQemuHeader: {
    ws: 'enc',
    label: "encrypted, data-file, qemu-img's header",
    images: libvirtEncryptedImages({ luksIterTimeMs: 10, layout: 'data-file', luksHeader: 'qemu-img' }),
  },
  df: {
    ws: 'enc',
    label: "encrypted, data-file, Tandem's header",
    images: libvirtEncryptedImages({ layout: 'data-file' }),
  },
};
const modes = Object.fromEntries(
  MODES.map((m) => {
    if (!all[m]) throw new Error(`--modes: unknown mode ${m}; expected some of ${Object.keys(all).join(',')}`);
    return [m, all[m].images ? { ...all[m], images: timed(m, all[m].images) } : all[m]];
  }),
);
const key = async () => new DataKey(dataKey.use((b) => Buffer.from(b)));
const cold = Object.fromEntries(MODES.map((m) => [m, []]));
const load = [loadavg()[0]];
for (let i = 0; i < RUNS; i++) {
  // Rounds interleave the rows, so a busy moment of the machine hits every row alike.
  for (const m of MODES) {
    const dir = join(OUT, `endpoint-${m}`);
    await rm(dir, { recursive: true, force: true });
    execSync('sync');
    const t = performance.now();
    await pullWorkspace({
      repo: `${url}/repo/`,
      workspace: modes[m].ws,
      dir,
      trustedRoot: root,
      ...(modes[m].images ? { key, encryptedImages: modes[m].images } : {}),
    });
    cold[m].push(performance.now() - t);
  }
  load.push(loadavg()[0]);
}
child.kill();
const results = {
  imageBytes: SIZE,
  runs: RUNS,
  loadavg1: load.map((x) => Number(x.toFixed(1))),
  coldMs: Object.fromEntries(MODES.map((m) => [m, cold[m].map(Math.round)])),
  coldMiBs: Object.fromEntries(MODES.map((m) => [m, mibs(SIZE, median(cold[m]))])),
  phasesMs: Object.fromEntries(
    Object.entries(phases).map(([m, runs]) => {
      const ks = [...new Set(runs.flatMap((r) => Object.keys(r)))];
      return [m, Object.fromEntries(ks.map((k) => [k, Math.round(median(runs.map((r) => r[k] ?? 0)))]))];
    }),
  ),
};
console.log(
  `cold pull of ${SIZE / MIB} MiB over loopback HTTP, median of ${RUNS} (load ${results.loadavg1.join(' -> ')}):`,
);
for (const m of MODES) {
  const ratio =
    m === 'plain' || !cold.plain ? '' : `, ${(results.coldMiBs[m] / results.coldMiBs.plain).toFixed(2)}x plaintext`;
  const ph = Object.entries(results.phasesMs[m] ?? {})
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  console.log(
    `  ${all[m].label.padEnd(40)} ${results.coldMiBs[m].toFixed(0).padStart(4)} MiB/s, ${Math.round(median(cold[m]))} ms (${results.coldMs[m].join(', ')})${ratio}${ph ? `; phases ms: ${ph}` : ''}`,
  );
}
dataKey.dispose();
await mkdir('bench/out', { recursive: true });
await writeFile('bench/out/crypto-cold.json', JSON.stringify(results, null, 2));
