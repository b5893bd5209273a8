// `tandem overlay list|discard` (issue 11): the encrypted overlay an encrypted workspace's session
// keeps with `onSessionEnd: snapshot` is listed and discarded; a running VM and an unknown
// workspace are refused with typed errors and exit codes. On the mock
// adapter; the real libvirt overlays are tested in adapter-libvirt's encrypted-overlay.integ.test.ts.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cliHarness } from '../cli-harness.test-helper.js';
import { ExitCode } from '../exit-codes.js';

describe('tandem overlay', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'tandem-cli-overlay-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  let stateDir = join(tmp, 'endpoint');
  const tandem = cliHarness(() => stateDir);
  const as = async (dir: string, ...args: string[]): ReturnType<typeof tandem> => {
    const before = stateDir;
    stateDir = dir;
    try {
      return await tandem(...args);
    } finally {
      stateDir = before;
    }
  };
  const admin = join(tmp, 'admin');

  /** An installed encrypted version (as tandem pull leaves it) whose sessions keep their writes. */
  const installed = (dir: string, keyId: string, usage: string): string => {
    mkdirSync(join(dir, '.tandem'), { recursive: true });
    mkdirSync(join(dir, 'images'), { recursive: true });
    writeFileSync(join(dir, 'images', 'disk.img'), Buffer.alloc(0));
    writeFileSync(
      join(dir, '.tandem', 'encryption.json'),
      JSON.stringify({ imageId: 'erp', keyId, format: 'qcow2', image: 'images/disk.img' }) + '\n',
    );
    const file = join(dir, 'tandem.workspace.yaml');
    writeFileSync(
      file,
      `apiVersion: tandem/v1\nkind: Workspace\nmetadata: { name: erp, version: 3.2.0 }\nspec:\n  image: { source: ./images/disk.img, format: qcow2, encryption: { keyId: erp } }\n  hardware: { memory: { fixedMiB: 512 } }\n  usage: ${usage}\n`,
    );
    return file;
  };

  it('lists and discards the kept overlay; refuses a running VM and an unknown workspace', async () => {
    const keyFile = join(admin, 'erp.key');
    const authority = join(admin, 'authority.pem');
    expect((await as(admin, 'keys', 'image', 'new', '--image', 'erp', '--out', keyFile)).code).toBe(ExitCode.ok);
    expect((await as(admin, 'keys', 'authority', 'new', '--out', authority)).code).toBe(ExitCode.ok);
    const keyId = (JSON.parse(readFileSync(keyFile, 'utf8')) as { keyId: string }).keyId;
    const device = (await tandem('--json', 'keys', 'device', 'show')).json.publicKey as string;
    expect((await tandem('keys', 'trust', `${authority}.pub`)).code).toBe(ExitCode.ok);
    const envelope = join(tmp, 'erp.envelope');
    const sealed = await as(
      admin,
      'keys',
      'seal',
      '--key',
      keyFile,
      '--authority-key',
      authority,
      '--device',
      device,
      '--not-after',
      'P14D',
      '--out',
      envelope,
    );
    expect(sealed.code, sealed.stderr).toBe(ExitCode.ok);
    const ws = installed(join(tmp, 'install', 'versions', '3.2.0'), keyId, '{ onSessionEnd: snapshot }');

    // No session yet: the workspace is unknown.
    const unknown = await tandem('--json', 'overlay', 'discard', 'nope');
    expect(unknown.code).toBe(ExitCode.notFound);
    expect(unknown.json.error.code).toBe('TANDEM_NOT_FOUND');
    expect(unknown.stderr).toMatch(/No session for workspace "nope"/);

    // The start puts the overlay on the encrypted disk; the session's end keeps it.
    const up = await tandem('--json', 'up', ws, '--adapter', 'mock', '--envelope', envelope);
    expect(up.code, up.stderr).toBe(ExitCode.ok);
    const listed = await tandem('--json', 'overlay', 'list', 'erp');
    expect(listed.code, listed.stderr).toBe(ExitCode.ok);
    const overlays = listed.json.overlays as { base: string; overlay: string }[];
    expect(overlays).toHaveLength(1);

    // Running: refused, and the overlay stays.
    const running = await tandem('--json', 'overlay', 'discard', 'erp');
    expect(running.code).toBe(ExitCode.invalidState);
    expect(running.json.error).toMatchObject({ code: 'TANDEM_INVALID_STATE', details: { current: 'running' } });
    expect(running.stderr).toMatch(/is running.*tandem stop erp/s);
    expect((await tandem('--json', 'overlay', 'list', 'erp')).json.overlays).toEqual(overlays);

    const ended = await tandem('--json', 'end', 'erp');
    expect(ended.code, ended.stderr).toBe(ExitCode.ok);
    expect(ended.json.action).toBe('snapshot');
    expect((await tandem('--json', 'overlay', 'list', 'erp')).json.overlays).toEqual(overlays);

    // Stopped: discarded; a second discard finds none.
    const discarded = await tandem('--json', 'overlay', 'discard', 'erp');
    expect(discarded.code, discarded.stderr).toBe(ExitCode.ok);
    expect(discarded.json.discarded).toEqual(overlays);
    expect((await tandem('--json', 'overlay', 'list', 'erp')).json.overlays).toEqual([]);
    const again = await tandem('overlay', 'discard', 'erp');
    expect(again.code).toBe(ExitCode.ok);
    expect(again.stdout).toMatch(/no encrypted overlay to discard/);

    // The next start makes a fresh overlay.
    expect((await tandem('up', ws, '--adapter', 'mock', '--envelope', envelope)).code).toBe(ExitCode.ok);
    const fresh = (await tandem('--json', 'overlay', 'list', 'erp')).json.overlays as { overlay: string }[];
    expect(fresh).toHaveLength(1);
    expect(fresh[0]!.overlay).not.toBe(overlays[0]!.overlay);
    expect((await tandem('stop', 'erp', '--force')).code).toBe(ExitCode.ok);
  });
});
