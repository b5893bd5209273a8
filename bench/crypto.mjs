// Encryption benchmark (issue 11): one run, side by side.
//
// 1. Chunk encryption and decryption of Tandem's ChunkCipher (a per-chunk AES-256-GCM key from
//    HMAC-SHA256, then AES-256-GCM) against raw node:crypto AES-256-GCM (one fixed key, a fresh
//    nonce per buffer) on the same 64 KiB buffers; and keyed chunk ids (HMAC-SHA256) against the
//    plaintext ids (SHA-256) on the same buffers.
//    Also disk sector encryption (AES-256-XTS-plain64, 512-byte sectors) on the same buffers:
//    Tandem's XtsCipher (XTS on OpenSSL AES-ECB) against Node's aes-256-xts one cipher per sector,
//    and raw AES-256-ECB (the bound).
// 2. A cold pull of an encrypted image in both at-rest layouts (a LUKS qcow2 written through
//    qemu-nbd; a LUKS qcow2 whose data file Tandem writes itself, its final check once reading
//    the image back and once from the digest hashed as written) against a plaintext pull of the
//    same image, over loopback HTTP, in the same run.
// 3. Bytes fetched for v1 -> v2 (2% changed, as in bench/delivery.mjs), encrypted and plaintext.
//    The plaintext v2 gets its chunk deltas at push; the encrypted v2 at pack (--delta-from the
//    v1 package); the row "no deltas" is the same encrypted image packed without them.
// Run against the built dist (needs qemu-utils for part 2 and 3):
//
//   npx tsc -b && node bench/crypto.mjs [--mib 1024] [--changed 0.02] [--buffers 4096] [--skip-pull]
//     [--cold-runs 3] [--modes plain,nbd,dfBack,df,dfNoDeltas]
import { execSync, spawn } from 'node:child_process';
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DirectoryStore, initRepository, packWorkspace, pullWorkspace, pushPackage } from '@tandem/core';
import { ChunkCipher, DataKey, XtsCipher } from '@tandem/core/crypto';
import { libvirtEncryptedImages } from '@tandem/adapter-libvirt';
import { benchImages } from './lib/images.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const MIB = 1024 * 1024;
const SIZE = arg('mib', 1024) * MIB;
const CHANGED = arg('changed', 0.02);
const BUFFERS = arg('buffers', 4096);
const COLD_RUNS = arg('cold-runs', 3);
const MODES = process.argv.includes('--modes') ? process.argv[process.argv.indexOf('--modes') + 1].split(',') : null;
const OUT = resolve('bench/out/crypto');
const fmt = (n) => (n / MIB).toFixed(1) + ' MiB';
const mibs = (bytes, ms) => bytes / MIB / (ms / 1000);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// --- 1. chunk cipher against raw AES-256-GCM ---
const buffers = Array.from({ length: 64 }, () => randomBytes(64 * 1024));
const dataKey = DataKey.generate();
const cipher = new ChunkCipher(dataKey);
const ids = buffers.map((b) => cipher.chunkId(b));
const sealed = buffers.map((b, i) => cipher.encrypt(ids[i], b));
const rawKey = randomBytes(32);
const nonces = buffers.map(() => randomBytes(12));
const rawSealed = buffers.map((b, i) => {
  const c = createCipheriv('aes-256-gcm', rawKey, nonces[i]);
  const out = Buffer.concat([c.update(b), c.final()]);
  return { out, tag: c.getAuthTag() };
});
const xtsKey = randomBytes(64);
const xts = new XtsCipher(xtsKey);
// Rounds interleave the rows, so a busy moment of the machine hits every row alike.
const fns = {
  'encrypt: raw AES-256-GCM': (i) => {
    const c = createCipheriv('aes-256-gcm', rawKey, nonces[i]);
    c.update(buffers[i]);
    c.final();
    c.getAuthTag();
  },
  'encrypt: ChunkCipher': (i) => cipher.encryptParts(ids[i], buffers[i]),
  'decrypt: raw AES-256-GCM': (i) => {
    const d = createDecipheriv('aes-256-gcm', rawKey, nonces[i]);
    d.setAuthTag(rawSealed[i].tag);
    d.update(rawSealed[i].out);
    d.final();
  },
  'decrypt: ChunkCipher': (i) => cipher.decrypt(ids[i], sealed[i]),
  'chunk id: SHA-256 (plaintext)': (i) => createHash('sha256').update(buffers[i]).digest(),
  'chunk id: HMAC-SHA256 (keyed)': (i) => cipher.chunkId(buffers[i]),
  'sectors: XtsCipher': (i) => xts.encrypt(i * 128, buffers[i]),
  'sectors: aes-256-xts per sector': (i) => {
    for (let at = 0; at < buffers[i].length; at += 512) {
      const iv = Buffer.alloc(16);
      iv.writeBigUInt64LE(BigInt(i * 128 + at / 512));
      const c = createCipheriv('aes-256-xts', xtsKey, iv);
      c.update(buffers[i].subarray(at, at + 512));
      c.final();
    }
  },
  'sectors: raw AES-256-ECB': (i) => {
    const c = createCipheriv('aes-256-ecb', rawKey, null);
    c.setAutoPadding(false);
    c.update(buffers[i]);
    c.final();
  },
};
const runs = Object.fromEntries(Object.keys(fns).map((k) => [k, []]));
// A discarded warm-up round first: with few buffers a row's first calls (JIT, first-touch memory)
// weigh on its figure (at --buffers 256 ChunkCipher decrypt read 0.25x to 0.36x raw; 0.92x at 2048).
for (const fn of Object.values(fns)) for (let n = 0; n < Math.min(BUFFERS, 256); n++) fn(n % buffers.length);
for (let r = 0; r < 7; r++) {
  for (const [name, fn] of Object.entries(fns)) {
    const t = performance.now();
    for (let n = 0; n < BUFFERS; n++) fn(n % buffers.length);
    runs[name].push(mibs(BUFFERS * 64 * 1024, performance.now() - t));
  }
}
const rows = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v)]));
const results = { bufferBytes: 64 * 1024, buffers: BUFFERS, throughputMiBs: rows };
console.log('\n64 KiB buffers, median of 7 interleaved rounds of', BUFFERS, 'buffers:');
for (const [name, v] of Object.entries(rows)) console.log(`  ${name.padEnd(32)} ${v.toFixed(0)} MiB/s`);
console.log(
  `  ratio encrypt ${(rows['encrypt: ChunkCipher'] / rows['encrypt: raw AES-256-GCM']).toFixed(2)}x raw, decrypt ${(rows['decrypt: ChunkCipher'] / rows['decrypt: raw AES-256-GCM']).toFixed(2)}x raw, keyed ids ${(rows['chunk id: HMAC-SHA256 (keyed)'] / rows['chunk id: SHA-256 (plaintext)']).toFixed(2)}x SHA-256`,
);
console.log(
  `  XtsCipher ${(rows['sectors: XtsCipher'] / rows['sectors: aes-256-xts per sector']).toFixed(1)}x Node's per-sector aes-256-xts, ${(rows['sectors: XtsCipher'] / rows['sectors: raw AES-256-ECB']).toFixed(2)}x raw AES-ECB`,
);
xts.dispose();

if (!process.argv.includes('--skip-pull')) {
  // --- 2 and 3: pulls, with the images of bench/delivery.mjs ---
  const { v1, v2 } = benchImages(SIZE, CHANGED);

  await rm(OUT, { recursive: true, force: true });
  for (const d of ['v1', 'v2']) await mkdir(join(OUT, d), { recursive: true });
  await writeFile(join(OUT, 'v1/disk.img'), v1);
  await writeFile(join(OUT, 'v2/disk.img'), v2);
  const ws = (name, version) =>
    `apiVersion: tandem/v1\nkind: Workspace\nmetadata: { name: ${name}, version: ${version} }\nspec:\n  image: { source: ./disk.img, format: raw }\n  hardware:\n    memory: { fixedMiB: 1024 }\n`;
  for (const [d, v] of [
    ['v1', '1.0.0'],
    ['v2', '2.0.0'],
  ]) {
    await writeFile(join(OUT, d, 'plain.workspace.yaml'), ws('plain', v));
    await writeFile(join(OUT, d, 'enc.workspace.yaml'), ws('enc', v));
    await writeFile(join(OUT, d, 'encnd.workspace.yaml'), ws('encnd', v));
  }
  const store = new DirectoryStore(join(OUT, 'repo'));
  const { keys, root } = await initRepository({ store });
  for (const d of ['v1', 'v2']) {
    await packWorkspace({ workspaceFile: join(OUT, d, 'plain.workspace.yaml'), out: join(OUT, `plain-${d}.tandem`) });
    await packWorkspace({
      workspaceFile: join(OUT, d, 'enc.workspace.yaml'),
      out: join(OUT, `enc-${d}.tandem`),
      encryption: { dataKey, ...(d === 'v2' ? { deltaFrom: join(OUT, 'enc-v1.tandem') } : {}) },
    });
    await packWorkspace({
      workspaceFile: join(OUT, d, 'encnd.workspace.yaml'),
      out: join(OUT, `encnd-${d}.tandem`),
      encryption: { dataKey },
    });
  }
  for (const w of ['plain', 'enc', 'encnd'])
    await pushPackage({ package: join(OUT, `${w}-v1.tandem`), store, keys, channels: ['stable'] });
  const child = spawn(process.execPath, [resolve('bench/lib/static-server.mjs'), OUT], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  process.on('exit', () => child.kill());
  const port = await new Promise((r) => child.stdout.once('data', (d) => r(Number(String(d).trim()))));
  const url = `http://127.0.0.1:${port}`;
  const stats = async () => (await fetch(`${url}/__stats`)).json();
  const reset = async () => (await fetch(`${url}/__reset`)).json();
  // Four rows: the plaintext pull, and the encrypted workspace in both at-rest layouts; the
  // data-file layout twice: its final check reading the image back (as before the digest hashed
  // as written), and taking the digest (the default).
  const withoutDigest = (store) => ({
    format: store.format,
    relocate: store.relocate?.bind(store),
    open: (...a) => store.open(...a),
    create: async (...a) => {
      const image = await store.create(...a);
      return {
        get size() {
          return image.size;
        },
        read: (o, l) => image.read(o, l),
        write: (o, d) => image.write(o, d),
        writeZeroes: (o, l) => image.writeZeroes(o, l),
        close: () => image.close(),
      };
    },
  });
  const modes = {
    plain: { ws: 'plain', label: 'plaintext' },
    nbd: {
      ws: 'enc',
      label: 'encrypted, layout nbd (qemu-nbd)',
      images: libvirtEncryptedImages({ luksIterTimeMs: 10 }),
    },
    dfBack: {
      ws: 'enc',
      label: 'encrypted, data-file, check read back',
      images: withoutDigest(libvirtEncryptedImages({ luksIterTimeMs: 10, layout: 'data-file' })),
    },
    df: {
      ws: 'enc',
      label: 'encrypted, data-file, hashed as written',
      images: libvirtEncryptedImages({ luksIterTimeMs: 10, layout: 'data-file' }),
    },
    dfNoDeltas: {
      ws: 'encnd',
      label: 'encrypted, data-file, no deltas',
      images: libvirtEncryptedImages({ luksIterTimeMs: 10, layout: 'data-file' }),
    },
  };
  if (MODES) for (const m of Object.keys(modes)) if (m !== 'plain' && !MODES.includes(m)) delete modes[m];
  const key = async () => new DataKey(dataKey.use((b) => Buffer.from(b)));
  const pull = async (m, dir, first) => {
    await reset();
    execSync('sync');
    const t = performance.now();
    await pullWorkspace({
      repo: `${url}/repo/`,
      workspace: modes[m].ws,
      dir,
      ...(first ? { trustedRoot: root } : {}),
      ...(modes[m].images ? { key, encryptedImages: modes[m].images } : {}),
    });
    return { ms: performance.now() - t, ...(await stats()) };
  };
  const names = Object.keys(modes);
  const cold = Object.fromEntries(names.map((m) => [m, []]));
  for (let i = 0; i < COLD_RUNS; i++) {
    for (const m of names) {
      const dir = join(OUT, `endpoint-${m}`);
      await rm(dir, { recursive: true, force: true });
      cold[m].push(await pull(m, dir, true));
    }
  }
  const pushed = {};
  for (const w of ['plain', 'enc', 'encnd'])
    pushed[w] = await pushPackage({ package: join(OUT, `${w}-v2.tandem`), store, keys, channels: ['stable'] });
  const delta = {};
  for (const m of names) delta[m] = await pull(m, join(OUT, `endpoint-${m}`), false);
  child.kill();
  const per = (f) => Object.fromEntries(names.map((m) => [m, f(m)]));
  results.pull = {
    imageBytes: SIZE,
    coldMiBs: per((m) => median(cold[m].map((p) => mibs(SIZE, p.ms)))),
    coldRunsMiBs: per((m) => cold[m].map((p) => mibs(SIZE, p.ms))),
    coldBytes: per((m) => cold[m][0].bytes),
    deltaBytes: per((m) => delta[m].bytes),
    deltaMs: per((m) => delta[m].ms),
    deltasPushed: Object.fromEntries(Object.entries(pushed).map(([w, r]) => [w, r.deltas])),
  };
  const p = results.pull;
  console.log(`\ncold pull of ${fmt(SIZE)} over loopback HTTP (median of 3; each run in order):`);
  for (const m of names)
    console.log(
      `  ${modes[m].label}`.padEnd(44),
      `${p.coldMiBs[m].toFixed(0)} MiB/s  (${p.coldRunsMiBs[m].map((x) => x.toFixed(0)).join(', ')}), ${fmt(p.coldBytes[m])} fetched` +
        (m === 'plain' ? '' : `, ratio ${(p.coldMiBs[m] / p.coldMiBs.plain).toFixed(2)}x the plaintext pull`),
    );
  console.log(
    `\nv1 -> v2 (${CHANGED * 100}% changed), bytes fetched (deltas published: plaintext ${pushed.plain.deltas}, encrypted ${pushed.enc.deltas}, no deltas ${pushed.encnd.deltas}):`,
  );
  for (const m of names)
    console.log(
      `  ${modes[m].label}`.padEnd(44),
      `${p.deltaBytes[m]} B (${fmt(p.deltaBytes[m])}) in ${(p.deltaMs[m] / 1000).toFixed(1)} s` +
        (m === 'plain' ? '' : `, ratio ${(p.deltaBytes[m] / p.deltaBytes.plain).toFixed(3)}x the plaintext delta`),
    );
}
cipher.dispose();
dataKey.dispose();
await mkdir('bench/out', { recursive: true });
await writeFile('bench/out/crypto.json', JSON.stringify(results, null, 2));
