import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { EventBus } from '@tandem/core';
import {
  DirectoryStore,
  initRepository,
  packWorkspace,
  pullWorkspace,
  pushPackage,
  type PullResult,
} from '@tandem/core/delivery';

/** Options of {@link runDeliveryDemo}. */
export interface DeliveryDemoOptions {
  /** An empty directory to work in. */
  workDir: string;
  /** Where the demo tells what it does. */
  log: (line: string) => void;
  /** Image size in MiB; default 32. */
  imageMiB?: number;
}

/** What the demo measured. */
export interface DeliveryDemoResult {
  readonly first: PullResult;
  readonly second: PullResult;
  /** Image bytes of version 2 that did not cross the network. */
  readonly bytesSaved: number;
}

const MIB = 1024 * 1024;
const mib = (n: number): string => `${(n / MIB).toFixed(1)} MiB`;

/** A disk-like image: random data with a run of zeros (unused blocks). */
function diskImage(size: number): Buffer {
  const image = randomBytes(size);
  image.fill(0, Math.floor(size / 2), Math.floor(size / 2) + Math.floor(size / 8));
  return image;
}

/** Version 2: three scattered edits of 128 KiB (an update touching a few files). */
function update(image: Buffer): Buffer {
  const next = Buffer.from(image);
  for (const at of [0.2, 0.55, 0.8]) randomBytes(128 * 1024).copy(next, Math.floor(next.length * at));
  return next;
}

async function writeWorkspace(dir: string, version: string, image: Buffer): Promise<string> {
  await mkdir(join(dir, 'images'), { recursive: true });
  await writeFile(join(dir, 'images', 'disk.qcow2'), image);
  const file = join(dir, 'tandem.workspace.yaml');
  await writeFile(
    file,
    `apiVersion: tandem/v1
kind: Workspace
metadata: { name: legacy-erp, version: ${version} }
spec:
  image: { source: ./images/disk.qcow2, format: qcow2 }
  hardware:
    memory: { minMiB: 512, maxMiB: 2048, hostFraction: 0.25 }
`,
  );
  return file;
}

/** Serves a directory over HTTP on 127.0.0.1, byte ranges included: any static server would do. */
async function serve(root: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    void readFile(join(root, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)))
      .then((body) => {
        const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
        if (!m) return res.writeHead(200, { 'content-length': body.length }).end(body);
        const part = body.subarray(Number(m[1]), Number(m[2]) + 1);
        res
          .writeHead(206, {
            'content-length': part.length,
            'content-range': `bytes ${m[1]}-${Number(m[1]) + part.length - 1}/${body.length}`,
          })
          .end(part);
      })
      .catch(() => res.writeHead(404).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/**
 * The delivery demo: an administrator packs version 1 of a workspace and publishes it in a
 * signed repository served over plain HTTP; an endpoint pulls it; the administrator packs and
 * publishes version 2; the endpoint pulls again and fetches only what changed.
 *
 * @example
 * ```ts
 * const { bytesSaved } = await runDeliveryDemo({ workDir: '/tmp/demo', log: console.log });
 * ```
 */
export async function runDeliveryDemo(options: DeliveryDemoOptions): Promise<DeliveryDemoResult> {
  const { workDir, log } = options;
  const size = (options.imageMiB ?? 32) * MIB;
  const store = new DirectoryStore(join(workDir, 'repo'));
  const { keys, root } = await initRepository({ store });
  log(`repository created in ${store.location} (Ed25519 keys for root, targets, snapshot, timestamp)`);

  const v1 = diskImage(size);
  const pkg1 = await packWorkspace({
    workspaceFile: await writeWorkspace(join(workDir, 'v1'), '1.0.0', v1),
    out: join(workDir, 'legacy-erp-1.0.0.tandem'),
  });
  log(`packed legacy-erp 1.0.0: ${pkg1.chunks} chunks, package ${mib(pkg1.packageBytes)} for a ${mib(size)} image`);
  const push1 = await pushPackage({ package: pkg1.path, store, keys, channels: ['stable'] });
  log(`published 1.0.0 on channel stable: ${mib(push1.bytesUploaded)} uploaded`);

  const server = await serve(store.location);
  const events = new EventBus();
  try {
    const dir = join(workDir, 'endpoint', 'legacy-erp');
    const first = await pullWorkspace({ repo: server.url, workspace: 'legacy-erp', dir, trustedRoot: root, events });
    log(
      `endpoint pulled ${first.version}: ${mib(first.bytesFetched)} over HTTP, ${mib(first.bytesFromSeeds)} of zeros made locally`,
    );

    const v2 = update(v1);
    const pkg2 = await packWorkspace({
      workspaceFile: await writeWorkspace(join(workDir, 'v2'), '2.0.0', v2),
      out: join(workDir, 'legacy-erp-2.0.0.tandem'),
    });
    const push2 = await pushPackage({ package: pkg2.path, store, keys, channels: ['stable'] });
    log(
      `published 2.0.0: ${push2.chunksUploaded} new chunks uploaded (${mib(push2.bytesUploaded)}), ${push2.chunksSkipped} already in the repository`,
    );

    let lastProgress = '';
    events.on(
      'sync.progress',
      (e) => (lastProgress = `${mib(e.data.bytesFetched)} of ${mib(e.data.bytesNeeded)} fetched`),
    );
    const second = await pullWorkspace({ repo: server.url, workspace: 'legacy-erp', dir, events });
    const bytesSaved = second.bytesTotal - second.bytesFetched;
    log(
      `endpoint pulled ${second.version} (was ${second.previousVersion}): ${mib(second.bytesFetched)} over HTTP in ${second.requests} requests (${lastProgress})`,
    );
    log(
      `bytes saved by delta sync: ${mib(bytesSaved)} of ${mib(second.bytesTotal)} (${((100 * bytesSaved) / second.bytesTotal).toFixed(1)}%)`,
    );
    const ok = Buffer.compare(await readFile(second.image), v2) === 0;
    log(
      `installed image verified: ${ok ? 'identical to version 2' : 'MISMATCH'}; previous version kept until then, switched atomically`,
    );
    if (!ok) throw new Error('the installed image differs from version 2');
    return { first, second, bytesSaved };
  } finally {
    await server.close();
  }
}
