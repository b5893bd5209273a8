// A standard TUF client (tuf-js, a dev dependency used only here) reads a Tandem repository over
// loopback HTTP: root chain, timestamp, snapshot, targets, then a manifest from its consistent
// (hash-prefixed) path, verified by tuf-js against the signed length and SHA-256.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Updater } from 'tuf-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeImage, serveDirectory, writeWorkspace, type TestServer } from '../fixtures.test.util.js';
import { parseManifest, sha256Hex } from '../manifest.js';
import { packWorkspace } from '../pack.js';
import { pullWorkspace } from '../pull.js';
import { manifestPathFor, pushPackage } from '../push.js';
import { DirectoryStore } from '../store/directory.js';
import { consistentTargetPath } from './metadata.js';
import { initRepository, rotateKey } from './publisher.js';

let base: string;
let server: TestServer;
let root: Buffer;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'tandem-tufjs-'));
  const store = new DirectoryStore(join(base, 'repo'));
  const init = await initRepository({ store });
  root = init.root;
  const ws = await writeWorkspace(join(base, 'ws'), { name: 'erp', version: '1.0.0', image: makeImage(1 << 20) });
  const pkg = await packWorkspace({ workspaceFile: ws, out: join(base, 'erp-1.0.0.tandem') });
  await pushPackage({ package: pkg.path, store, keys: init.keys, channels: ['stable'] });
  // A second root version, so the client walks the root chain too.
  await rotateKey({ store, keys: init.keys }, 'targets');
  server = await serveDirectory(join(base, 'repo'));
});

afterAll(async () => {
  await server?.close();
});

describe('tuf-js reads a Tandem repository', () => {
  it('refreshes, finds the manifest, downloads it from its consistent path and verifies it', async () => {
    const metadataDir = join(base, 'tuf-metadata');
    const targetDir = join(base, 'tuf-targets');
    await mkdir(metadataDir, { recursive: true });
    await mkdir(targetDir, { recursive: true });
    await writeFile(join(metadataDir, 'root.json'), root);
    const updater = new Updater({ metadataDir, metadataBaseUrl: server.url, targetDir, targetBaseUrl: server.url });
    await updater.refresh();
    const path = manifestPathFor('erp', '1.0.0');
    const info = await updater.getTargetInfo(path);
    expect(info).toBeDefined();
    const file = await updater.downloadTarget(info!, join(targetDir, 'erp.manifest'));
    const bytes = await readFile(file);
    expect(parseManifest(bytes, file).workspace.version).toBe('1.0.0');
    const fetched = server.requests.map((r) => r.path);
    expect(fetched).toContain('2.root.json');
    expect(fetched).toContain(consistentTargetPath(path, sha256Hex(bytes)));
    expect(fetched).not.toContain(path);
  });

  it('refuses a tampered manifest (tuf-js checks the signed digest)', async () => {
    const path = manifestPathFor('erp', '1.0.0');
    const metadataDir = join(base, 'tuf-metadata-2');
    await mkdir(metadataDir, { recursive: true });
    await writeFile(join(metadataDir, 'root.json'), root);
    const updater = new Updater({
      metadataDir,
      metadataBaseUrl: server.url,
      targetDir: base,
      targetBaseUrl: server.url,
    });
    await updater.refresh();
    const info = (await updater.getTargetInfo(path))!;
    server.fault = (_req, res, p, f) => {
      if (!p.endsWith('.manifest') || !f) return false;
      const bad = Buffer.from(f);
      bad[bad.length - 1]! ^= 1;
      res.writeHead(200, { 'content-length': bad.length }).end(bad);
      return true;
    };
    try {
      await expect(updater.downloadTarget(info, join(base, 'bad.manifest'))).rejects.toThrow(/hash|digest/i);
    } finally {
      server.fault = undefined;
    }
  });

  it("Tandem's own client reads the consistent copy, and a repository without it (pushed before) through the plain path", async () => {
    const dir = join(base, 'endpoint');
    const r = await pullWorkspace({ repo: server.url, workspace: 'erp', dir, trustedRoot: root });
    expect(r.version).toBe('1.0.0');
    const path = manifestPathFor('erp', '1.0.0');
    const manifest = await readFile(join(base, 'repo', path));
    expect(server.requests.map((q) => q.path)).toContain(consistentTargetPath(path, sha256Hex(manifest)));
    // An older repository: only the plain path exists.
    await rm(join(base, 'repo', consistentTargetPath(path, sha256Hex(manifest))));
    const r2 = await pullWorkspace({
      repo: server.url,
      workspace: 'erp',
      dir: join(base, 'endpoint-2'),
      trustedRoot: root,
    });
    expect(r2.imageSha256).toBe(r.imageSha256);
  });
});
