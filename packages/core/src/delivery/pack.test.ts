import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseWorkspace } from '../workspace/load.js';
import { makeImage, writeWorkspace } from './fixtures.test.util.js';
import { packWorkspace } from './pack.js';

describe('packWorkspace', () => {
  it('packages another version than the file says when asked, and the packaged file says it too', async () => {
    const base = await mkdtemp(join(tmpdir(), 'tandem-pack-'));
    const ws = await writeWorkspace(join(base, 'ws'), { name: 'erp', version: '1.0.0', image: makeImage(256 * 1024) });
    const { manifest } = await packWorkspace({
      workspaceFile: ws,
      out: join(base, 'erp.tandem'),
      version: '1.0.1-rc.2',
    });
    expect(manifest.workspace.version).toBe('1.0.1-rc.2');
    expect(parseWorkspace(manifest.workspace.file.text).metadata.version).toBe('1.0.1-rc.2');
    await expect(
      packWorkspace({ workspaceFile: ws, out: join(base, 'bad.tandem'), version: 'v2' }),
    ).rejects.toMatchObject({
      code: 'TANDEM_INVALID_INPUT',
      message: expect.stringMatching(/semantic version/),
    });
  });
});
