import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensurePrivateDir, readPrivateFile, writePrivateFile } from './private-files.js';

describe('private state files', () => {
  let root: string;
  let umask: number;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'tandem-private-'));
    umask = process.umask(0o000); // the most permissive umask there is
  });
  afterEach(async () => {
    process.umask(umask);
    await rm(root, { recursive: true, force: true });
  });

  const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;

  it('makes directories 0700 and files 0600 whatever the umask', async () => {
    const dir = join(root, 'state', 'keys');
    await writePrivateFile(join(dir, 'device.json'), 'x');
    expect(await mode(join(root, 'state'))).toBe(0o700);
    expect(await mode(dir)).toBe(0o700);
    expect(await mode(join(dir, 'device.json'))).toBe(0o600);
  });

  it('narrows an existing wide directory and file', async () => {
    const dir = join(root, 'wide');
    await ensurePrivateDir(dir);
    await import('node:fs/promises').then((fs) => fs.chmod(dir, 0o755));
    await ensurePrivateDir(dir);
    expect(await mode(dir)).toBe(0o700);
    const file = join(dir, 'f');
    await writeFile(file, 'secret', { mode: 0o644 });
    expect(await mode(file)).toBe(0o644);
    expect((await readPrivateFile(file))?.toString()).toBe('secret');
    expect(await mode(file)).toBe(0o600);
  });

  it('never narrows a shared directory, nor an existing one a file is written into', async () => {
    const shared = join(root, 'shared');
    await ensurePrivateDir(shared);
    await import('node:fs/promises').then((fs) => fs.chmod(shared, 0o1777));
    await expect(ensurePrivateDir(shared)).rejects.toMatchObject({ code: 'TANDEM_INVALID_STATE' });
    expect(await mode(shared)).toBe(0o777);
    const open = join(root, 'project');
    await import('node:fs/promises').then((fs) => fs.mkdir(open, { mode: 0o755 }));
    await writePrivateFile(join(open, 'erp.key'), 'k');
    expect(await mode(open)).toBe(0o755);
    expect(await mode(join(open, 'erp.key'))).toBe(0o600);
  });

  it('replaces a file atomically and reads a missing one as undefined', async () => {
    const file = join(root, 'a', 'f');
    await writePrivateFile(file, 'one');
    await writePrivateFile(file, 'two');
    expect((await readPrivateFile(file))?.toString()).toBe('two');
    expect(await readPrivateFile(join(root, 'nothing'))).toBeUndefined();
  });
});
