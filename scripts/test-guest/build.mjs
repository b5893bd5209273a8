#!/usr/bin/env node
// Builds the real Linux test guest from Debian packages (see README.md beside this file):
//
//   node scripts/test-guest/build.mjs base   [--cache DIR] [--node PATH]
//       the slow, stable part, built once and cached under DIR/<hash of its inputs>/:
//       vmlinuz, base.cpio.gz (busybox, the kernel modules, Node.js and its libraries),
//       manifest.json; DIR/current points at it. Prints the directory.
//   node scripts/test-guest/build.mjs layer  --out FILE
//       the agent layer from the current tree (the guest agent's and the core's dist, zod,
//       /init, the test apps), a second small archive.
//   node scripts/test-guest/build.mjs initrd --out FILE [--guest DIR]
//       base.cpio.gz of DIR (default $TANDEM_TEST_GUEST or DIR/current) followed by a fresh
//       agent layer: Linux unpacks concatenated, separately gzipped newc archives in turn.
//
// DIR defaults to $TANDEM_TEST_GUEST_CACHE or /var/cache/tandem-ci/test-guest: QEMU runs as
// libvirt-qemu and must read the kernel and the initramfs, so not a private /tmp.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { once } from 'node:events';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pngIcon } from './png.mjs';
import { newcWriter } from './newc.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../..');
const DEFAULT_CACHE = process.env.TANDEM_TEST_GUEST_CACHE ?? '/var/cache/tandem-ci/test-guest';

/** Loaded by /init in this order; the file systems (ext4, tmpfs) are built into the cloud kernel. */
const MODULES = [
  'virtio_ring',
  'virtio',
  'virtio_pci_modern_dev',
  'virtio_pci_legacy_dev',
  'virtio_pci',
  'virtio_console',
  'virtio_blk',
  'failover',
  'net_failover',
  'virtio_net',
  'evdev',
  'button',
];

/** The .desktop entries placed in the image (the apps tests expect discovery to return). */
const TEST_APPS = [
  { id: 'tandem-notes', name: 'Tandem Notes', exec: '/bin/vi %F', color: [0xd9, 0x53, 0x4f], icon: 'theme' },
  { id: 'tandem-clock', name: 'Tandem Clock', exec: '/bin/date', color: [0x33, 0x7a, 0xb7], icon: 'path' },
];

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    cache: { type: 'string', default: DEFAULT_CACHE },
    node: { type: 'string' },
    out: { type: 'string' },
    guest: { type: 'string' },
  },
});
const command = positionals[0] ?? 'base';

const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', ...opts });
const sha256File = (path) => createHash('sha256').update(readFileSync(path)).digest('hex');

function aptCandidate(pkg) {
  const show = sh('apt-cache', ['show', '--no-all-versions', pkg], { env: { ...process.env, LC_ALL: 'C' } });
  const field = (name) => show.match(new RegExp(`^${name}: (.*)$`, 'm'))?.[1];
  const version = field('Version');
  if (!version) throw new Error(`apt-cache knows no version of ${pkg}: run apt-get update`);
  return { pkg, version, depends: field('Depends') ?? '' };
}

/** PAM's password helper (libpam-modules-bin): the guest agent's Linux sign-in checks passwords with it. */
const UNIX_CHKPWD = '/usr/sbin/unix_chkpwd';

function nodeBinary() {
  if (values.node) return resolve(values.node);
  const pinned = join(ROOT, 'node_modules/node/bin/node');
  return existsSync(pinned) ? pinned : process.execPath;
}

/** The shared libraries `ldd` lists for a binary, as [path in the guest, real file on the host]. */
function sharedLibraries(binary) {
  const libs = [];
  for (const line of sh('ldd', [binary]).split('\n')) {
    const m = line.match(/^\s*(?:\S+ => )?(\/\S+) \(0x/);
    if (m) libs.push([m[1], realpathSync(m[1])]);
  }
  return libs;
}

async function buildBase() {
  const started = Date.now();
  const node = nodeBinary();
  const nodeVersion = sh(node, ['--version']).trim();
  const meta = aptCandidate('linux-image-cloud-amd64');
  const kernelPkgName = meta.depends.match(/(linux-image-[0-9][^\s(,]*-cloud-amd64)/)?.[1];
  if (!kernelPkgName) throw new Error(`cannot find the versioned kernel in "${meta.depends}"`);
  const kernelPkg = aptCandidate(kernelPkgName);
  const busybox = aptCandidate('busybox-static');
  const inputs = {
    kernel: `${kernelPkg.pkg}=${kernelPkg.version}`,
    busybox: `${busybox.pkg}=${busybox.version}`,
    node: `${nodeVersion} sha256:${sha256File(node)}`,
    unixChkpwd: `sha256:${sha256File(UNIX_CHKPWD)}`,
    modules: MODULES,
    // The recipe itself: this function and the archive writer (not the agent layer's code).
    builder: [sha256File(join(HERE, 'newc.mjs')), createHash('sha256').update(buildBase.toString()).digest('hex')],
  };
  const hash = createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 16);
  const cache = resolve(values.cache);
  const dir = join(cache, hash);
  mkdirSync(cache, { recursive: true, mode: 0o755 });
  chmodSync(cache, 0o755);
  if (existsSync(join(dir, 'manifest.json'))) {
    pointCurrent(cache, hash);
    console.error(`test guest: cached ${dir} (${Date.now() - started} ms)`);
    console.log(dir);
    return;
  }

  const work = join(cache, `.work-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    // apt drops to the _apt user for downloads: let it write here.
    chmodSync(work, 0o777);
    sh(
      'apt-get',
      [
        'download',
        '-q',
        `${meta.pkg}=${meta.version}`,
        `${kernelPkg.pkg}=${kernelPkg.version}`,
        `${busybox.pkg}=${busybox.version}`,
      ],
      {
        cwd: work,
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    const debs = readdirSync(work).filter((f) => f.endsWith('.deb'));
    const root = join(work, 'root');
    for (const deb of debs) sh('dpkg-deb', ['-x', join(work, deb), root]);
    const release = readdirSync(join(root, 'lib/modules'))[0];
    const moduleFiles = MODULES.map((m) => {
      const found = sh('find', [join(root, 'lib/modules', release), '-name', `${m}.ko*`])
        .trim()
        .split('\n')[0];
      if (!found) throw new Error(`kernel ${release} has no module ${m}`);
      if (!found.endsWith('.ko')) throw new Error(`module ${found} is compressed; busybox insmod wants .ko`);
      return [m, found];
    });

    // Strip the debug information when binutils is here (about 20 MB less to unpack at boot).
    let guestNode = node;
    try {
      sh('strip', ['-o', join(work, 'node'), node]);
      guestNode = join(work, 'node');
    } catch {
      console.error('test guest: strip is not installed; packing Node.js unstripped');
    }

    const stage = join(work, 'out');
    mkdirSync(stage);
    const cpio = newcWriter(join(stage, 'base.cpio.gz'));
    for (const d of ['bin', 'dev', 'etc', 'proc', 'sys', 'run', 'tmp', 'mnt/state', 'usr/bin', 'root'])
      await cpio.dir(d);
    await cpio.chardev('dev/console', 5, 1);
    await cpio.chardev('dev/null', 1, 3, 0o666);
    await cpio.file('bin/busybox', readFileSync(join(root, 'bin/busybox')), 0o755);
    await cpio.symlink('bin/sh', 'busybox');
    for (const [m, file] of moduleFiles) await cpio.file(`lib/modules/${release}/${m}.ko`, readFileSync(file));
    await cpio.file('usr/bin/node', readFileSync(guestNode), 0o755);
    const libs = new Map([...sharedLibraries(node), ...sharedLibraries(UNIX_CHKPWD)]);
    for (const [guestPath, real] of [...libs].sort(([a], [b]) => a.localeCompare(b)))
      await cpio.file(guestPath, readFileSync(real), 0o755);
    await cpio.dir('usr/sbin');
    await cpio.file('usr/sbin/unix_chkpwd', readFileSync(UNIX_CHKPWD), 0o755);
    await cpio.file('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n');
    await cpio.file('etc/group', 'root:x:0:\n');
    await cpio.file(
      'etc/os-release',
      `PRETTY_NAME="Tandem test guest (Debian bookworm kernel ${release})"\nNAME="Tandem test guest"\nID=tandem-test-guest\nID_LIKE=debian\nVERSION_ID="12"\n`,
    );
    const uncompressed = await cpio.close();
    copyFileSync(join(root, `boot/vmlinuz-${release}`), join(stage, 'vmlinuz'));
    const manifest = {
      kernelRelease: release,
      kernelPackage: kernelPkg.pkg,
      kernelPackageVersion: kernelPkg.version,
      busybox: busybox.version,
      node: nodeVersion,
      modules: MODULES,
      baseUncompressedBytes: uncompressed,
      baseBytes: statSync(join(stage, 'base.cpio.gz')).size,
      kernelBytes: statSync(join(stage, 'vmlinuz')).size,
      inputs,
      buildSeconds: Math.round((Date.now() - started) / 100) / 10,
    };
    writeFileSync(join(stage, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    for (const f of readdirSync(stage)) chmodSync(join(stage, f), 0o644);
    chmodSync(stage, 0o755);
    rmSync(dir, { recursive: true, force: true });
    renameSync(stage, dir);
    pointCurrent(cache, hash);
    console.error(
      `test guest: built ${dir} in ${manifest.buildSeconds} s (${(manifest.baseBytes / 2 ** 20).toFixed(1)} MiB)`,
    );
    console.log(dir);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function pointCurrent(cache, hash) {
  const link = join(cache, 'current');
  rmSync(`${link}.new`, { force: true });
  symlinkSync(hash, `${link}.new`);
  renameSync(`${link}.new`, link);
  // Bases of older inputs are not used again: keep only the current one.
  for (const entry of readdirSync(cache, { withFileTypes: true })) {
    if (entry.isDirectory() && /^[0-9a-f]{16}$/.test(entry.name) && entry.name !== hash) {
      rmSync(join(cache, entry.name), { recursive: true, force: true });
    }
  }
}

const RUNTIME_FILE = (name) => !/\.(d\.[cm]?ts|map|md|ts|tsbuildinfo)$/.test(name);

/** Every file under `dir` that the guest needs at run time (no type declarations, maps or sources). */
function runtimeFiles(dir) {
  const out = [];
  const walk = (d) => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && entry.name !== 'src') walk(p);
      } else if (entry.isFile() && RUNTIME_FILE(entry.name)) {
        out.push(p);
      }
    }
  };
  walk(dir);
  return out;
}

async function packPackage(cpio, name, dir, parts) {
  const target = `opt/tandem/node_modules/${name}`;
  await cpio.file(`${target}/package.json`, readFileSync(join(dir, 'package.json')));
  for (const part of parts) {
    const base = join(dir, part);
    if (!existsSync(base)) continue;
    const found = statSync(base).isDirectory() ? runtimeFiles(base) : RUNTIME_FILE(part) ? [base] : [];
    for (const f of found) await cpio.file(`${target}/${relative(dir, f)}`, readFileSync(f));
  }
}

async function buildLayer(out) {
  const cpio = newcWriter(out);
  await cpio.file('init', readFileSync(join(HERE, 'init.sh')), 0o755);
  await cpio.file('etc/udhcpc.script', readFileSync(join(HERE, 'udhcpc.script')), 0o755);
  // Where Debian's busybox udhcpc looks for its hook when not given -s (the agent's DHCP step).
  await cpio.file('etc/udhcpc/default.script', readFileSync(join(HERE, 'udhcpc.script')), 0o755);
  const poweroff = '#!/bin/sh\nsync\numount /mnt/state 2>/dev/null\npoweroff -f\n';
  await cpio.file('etc/acpi/PWRF/00000080', poweroff, 0o755);
  await cpio.file('etc/acpi/button/power', poweroff, 0o755);

  // The image's session command (the guest agent's sign-in runs it as the user through su -l):
  // here it records who it runs as, then stays, as a desktop session would.
  await cpio.file(
    'etc/tandem/session',
    '#!/bin/sh\n{ id; echo "HOME=$HOME USER=$USER"; } >"$HOME/.tandem-session"\nexec sleep 2147483647\n',
    0o755,
  );

  const agentDir = join(ROOT, 'packages/guest-agent');
  if (existsSync(join(agentDir, 'dist/main.js'))) {
    await packPackage(cpio, '@tandem/guest-agent', agentDir, ['dist']);
    await packPackage(cpio, '@tandem/core', join(ROOT, 'packages/core'), ['dist']);
    const zod = realpathSync(join(ROOT, 'node_modules/zod'));
    await packPackage(
      cpio,
      'zod',
      zod,
      readdirSync(zod).filter((f) => f !== 'package.json'),
    );
  } else {
    // Before the agent exists: a stand-in that says one line on the agent's port.
    await cpio.file('opt/tandem/stand-in.mjs', readFileSync(join(HERE, 'stand-in.mjs')));
  }

  for (const app of TEST_APPS) {
    const png = pngIcon(48, app.color);
    const iconPath = `usr/share/icons/hicolor/48x48/apps/${app.id}.png`;
    await cpio.file(iconPath, png);
    const icon = app.icon === 'theme' ? app.id : `/${iconPath}`;
    await cpio.file(
      `usr/share/applications/${app.id}.desktop`,
      `[Desktop Entry]\nType=Application\nName=${app.name}\nExec=${app.exec}\nIcon=${icon}\nCategories=Utility;\n`,
    );
  }
  // An entry discovery must leave out (NoDisplay), as a desktop menu does.
  await cpio.file(
    'usr/share/applications/tandem-hidden.desktop',
    '[Desktop Entry]\nType=Application\nName=Tandem Hidden\nExec=/bin/true\nNoDisplay=true\n',
  );
  return cpio.close();
}

async function buildInitrd(out) {
  const guest = resolve(values.guest ?? process.env.TANDEM_TEST_GUEST ?? join(values.cache, 'current'));
  const base = join(guest, 'base.cpio.gz');
  if (!existsSync(base)) throw new Error(`no test guest at ${guest}: run node scripts/test-guest/build.mjs base`);
  const layer = `${out}.layer`;
  await buildLayer(layer);
  const dst = createWriteStream(out, { mode: 0o644 });
  for (const part of [base, layer]) {
    const src = createReadStream(part);
    src.pipe(dst, { end: false });
    await once(src, 'end');
  }
  dst.end();
  await once(dst, 'close');
  rmSync(layer);
  chmodSync(out, 0o644);
  console.log(out);
}

switch (command) {
  case 'base':
    await buildBase();
    break;
  case 'layer':
    if (!values.out) throw new Error('layer needs --out FILE');
    await buildLayer(resolve(values.out));
    console.log(resolve(values.out));
    break;
  case 'initrd':
    if (!values.out) throw new Error('initrd needs --out FILE');
    await buildInitrd(resolve(values.out));
    break;
  default:
    console.error(`unknown command ${command}: base | layer | initrd`);
    process.exit(2);
}
