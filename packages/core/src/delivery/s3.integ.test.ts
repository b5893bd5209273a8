// Push to and pull from a real S3-compatible server: s3rver (npm), which speaks the S3 REST API
// on loopback. It checks the access key id but, unlike AWS, not the SigV4 signature itself;
// sigv4.test.ts checks the signing against AWS's published example instead.
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integrationGate } from '../testing/integration.js';
import { changeImage, makeImage, writeWorkspace } from './fixtures.test.util.js';
import { sha256Hex } from './manifest.js';
import { packWorkspace } from './pack.js';
import { pullWorkspace } from './pull.js';
import { pushPackage } from './push.js';
import { openStore } from './store/open.js';
import { S3Store } from './store/s3.js';
import { initRepository } from './trust/publisher.js';

interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverInstance;

const moduleName = 's3rver';
let S3rver: S3rverClass | undefined;
const gate = await integrationGate(
  's3rver',
  async () => {
    try {
      S3rver = ((await import(moduleName)) as { default: S3rverClass }).default;
      return null;
    } catch (err) {
      return `s3rver cannot be loaded (${(err as Error).message})`;
    }
  },
  'run npm install (s3rver is a devDependency of @tandem/core)',
);

describe.skipIf(!gate.enabled)('S3-compatible repository (s3rver)', () => {
  let server: S3rverInstance;
  let endpoint: string;
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'tandem-s3-'));
    server = new S3rver!({
      port: 0,
      address: '127.0.0.1',
      silent: true,
      directory: join(tmp, 's3'),
      configureBuckets: [{ name: 'tandem' }],
    });
    const { port } = await server.run();
    endpoint = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await server?.close();
  });

  it('publishes into a bucket without re-uploading known chunks, and endpoints pull from it', async () => {
    const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
    const store = new S3Store({ endpoint, bucket: 'tandem', prefix: 'repo', credentials });
    const { keys, root } = await initRepository({ store });
    const v1 = makeImage(2 << 20, [[256 << 10, 256 << 10]]);
    const v2 = changeImage(v1, 4, 32 << 10);
    const results = [];
    for (const [version, image] of [
      ['1.0.0', v1],
      ['2.0.0', v2],
    ] as const) {
      const ws = await writeWorkspace(join(tmp, version), { name: 'erp', version, image });
      const pkg = await packWorkspace({ workspaceFile: ws, out: join(tmp, `${version}.tandem`) });
      results.push(await pushPackage({ package: pkg.path, store, keys, channels: ['stable'] }));
    }
    expect(results[1]!.chunksSkipped).toBeGreaterThan(0);
    expect(results[1]!.bytesUploaded).toBeLessThan(results[0]!.bytesUploaded / 2);

    // Unknown credentials are refused with a clear HostError.
    const wrong = new S3Store({
      endpoint,
      bucket: 'tandem',
      prefix: 'repo',
      credentials: { accessKeyId: 'NOBODY', secretAccessKey: 'nope' },
    });
    await expect(wrong.get('timestamp.json')).rejects.toMatchObject({ code: 'TANDEM_HOST', details: { status: 403 } });

    const dir = join(tmp, 'endpoint');
    const env = { AWS_ENDPOINT_URL: endpoint, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };
    const r1 = await pullWorkspace({
      repo: openStore('s3://tandem/repo', { env }),
      workspace: 'erp',
      dir,
      trustedRoot: root,
      version: '1.0.0',
    });
    expect(sha256Hex(await readFile(r1.image))).toBe(sha256Hex(v1));
    const r2 = await pullWorkspace({ repo: openStore('s3://tandem/repo', { env }), workspace: 'erp', dir });
    expect(r2.version).toBe('2.0.0');
    expect(sha256Hex(await readFile(r2.image))).toBe(sha256Hex(v2));
    expect(r2.bytesFromSeeds).toBeGreaterThan(r2.bytesTotal / 2);
  });
});
