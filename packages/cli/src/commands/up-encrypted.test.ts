// `tandem up` of an encrypted workspace (issue 11): the envelope for the workspace's image is
// found in the state directory or taken from --envelope, checked (authority, device, image,
// version, lease, trusted time) and opened in memory; the disk key reaches the adapter's start
// (the mock refuses an encrypted disk started without one). Every refusal is a typed error with
// its exit code, and nothing is started. The real pull and a real QEMU start are in
// ../encrypted-up.integ.test.ts.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '@tandem/core';
import { keysDirOf, openEndpointKeys } from '@tandem/core/crypto';
import { runAgent } from '@tandem/agent';
import { openAdapter } from '../adapters.js';
import { cliHarness } from '../cli-harness.test-helper.js';
import { StateDir } from '../state.js';
import { sessionDiskKeys } from './keys-files.js';
import { ExitCode } from '../exit-codes.js';

const DAY = 24 * 3600 * 1000;

describe('tandem up of an encrypted workspace', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'tandem-cli-up-enc-'));
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
  const endpoint = join(tmp, 'endpoint');
  const dataKeyFile = join(admin, 'erp.key');
  const authority = join(admin, 'authority.pem');

  /** Seals the data key for `device` (`tandem keys seal`), returning the envelope's path. */
  const seal = async (name: string, device: string, ...extra: string[]): Promise<string> => {
    const out = join(tmp, `${name}.envelope`);
    const r = await as(
      admin,
      'keys',
      'seal',
      '--key',
      dataKeyFile,
      '--authority-key',
      authority,
      '--device',
      device,
      '--out',
      out,
      ...extra,
    );
    expect(r.code, r.stderr).toBe(ExitCode.ok);
    return out;
  };

  /**
   * An installed version of the encrypted workspace as `tandem pull` leaves it (see
   * core/src/delivery/pull-encrypted.ts): the workspace file naming the image's key, and
   * `.tandem/encryption.json` with the image id and the data key's public id.
   */
  const installed = (dir: string, keyId: string): string => {
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
      'apiVersion: tandem/v1\nkind: Workspace\nmetadata: { name: erp, version: 3.2.0 }\nspec:\n  image: { source: ./images/disk.img, format: qcow2, encryption: { keyId: erp } }\n  hardware: { memory: { fixedMiB: 512 } }\n',
    );
    return file;
  };

  it('starts only with a valid envelope; each refusal is typed and starts nothing', async () => {
    expect((await as(admin, 'keys', 'image', 'new', '--image', 'erp', '--out', dataKeyFile)).code).toBe(ExitCode.ok);
    expect((await as(admin, 'keys', 'authority', 'new', '--out', authority)).code).toBe(ExitCode.ok);
    const keyText = JSON.parse(readFileSync(dataKeyFile, 'utf8')) as { key: string; keyId: string };
    const devicePub = (await tandem('--json', 'keys', 'device', 'show')).json.publicKey as string;
    const otherPub = (await as(join(tmp, 'other'), '--json', 'keys', 'device', 'show')).json.publicKey as string;
    const ws = installed(join(tmp, 'install', 'versions', '3.2.0'), keyText.keyId);

    const up = (...extra: string[]): ReturnType<typeof tandem> =>
      tandem('--json', 'up', ws, '--adapter', 'mock', ...extra);
    const sessions = async (): Promise<{ state: string }[]> =>
      (await tandem('--json', 'status')).json.sessions as { state: string }[];
    /** A refused up: its exit code, error code and reason, a message saying what to do, nothing started. */
    const refused = async (
      args: string[],
      expected: { exit: number; code: string; reason?: string; message: RegExp },
    ): Promise<void> => {
      const r = await up(...args);
      expect(r.code, r.stderr).toBe(expected.exit);
      expect(r.json.error).toMatchObject({
        code: expected.code,
        ...(expected.reason ? { details: expect.objectContaining({ reason: expected.reason }) } : {}),
      });
      expect(r.stderr).toMatch(expected.message);
      expect(r.stdout + r.stderr).not.toContain(keyText.key);
      expect((await sessions()).filter((s) => s.state === 'running')).toEqual([]);
    };

    const good = await seal('good', devicePub, '--versions', '>=3.0.0 <4', '--not-after', 'P14D');
    const table: { what: string; args: string[]; exit: number; code: string; reason?: string; message: RegExp }[] = [
      {
        what: 'no envelope in the state directory',
        args: [],
        exit: ExitCode.notFound,
        code: 'TANDEM_KEY_UNAVAILABLE',
        message: /no envelope for image "erp".*tandem keys device show/s,
      },
      {
        what: 'an envelope file that does not exist',
        args: ['--envelope', join(tmp, 'nowhere.envelope')],
        exit: ExitCode.notFound,
        code: 'TANDEM_KEY_UNAVAILABLE',
        message: /nowhere\.envelope does not exist/,
      },
      {
        what: 'an authority this device does not trust',
        args: ['--envelope', good],
        exit: ExitCode.notFound,
        code: 'TANDEM_KEY_UNAVAILABLE',
        message: /trusts no key-release authority.*tandem keys trust/s,
      },
    ];
    for (const row of table) await refused(row.args, row);

    expect((await tandem('keys', 'trust', `${authority}.pub`)).code).toBe(ExitCode.ok);
    const notCovered = await seal('v4', devicePub, '--versions', '>=4.0.0', '--not-after', 'P14D');
    const forOther = await seal('other', otherPub, '--not-after', 'P14D');
    const expired = await seal(
      'expired',
      devicePub,
      '--not-before',
      '2020-01-01T00:00:00Z',
      '--not-after',
      '2020-01-15T00:00:00Z',
    );
    const later = await seal(
      'later',
      devicePub,
      '--not-before',
      '2099-01-01T00:00:00Z',
      '--not-after',
      '2099-02-01T00:00:00Z',
    );
    const tampered = join(tmp, 'tampered.envelope');
    const text = readFileSync(good, 'utf8');
    const at = text.indexOf('"sig": "') + 20;
    writeFileSync(tampered, text.slice(0, at) + (text[at] === 'A' ? 'B' : 'A') + text.slice(at + 1));
    const attacks: typeof table = [
      {
        what: 'an envelope for another device',
        args: ['--envelope', forOther],
        exit: ExitCode.integrity,
        code: 'TANDEM_AUTH',
        reason: 'other-device',
        message: /not this one/,
      },
      {
        what: 'a version the envelope does not cover',
        args: ['--envelope', notCovered],
        exit: ExitCode.integrity,
        code: 'TANDEM_AUTH',
        reason: 'version-not-covered',
        message: /not 3\.2\.0/,
      },
      {
        what: 'an expired lease',
        args: ['--envelope', expired],
        exit: ExitCode.policyDenied,
        code: 'TANDEM_LEASE',
        reason: 'expired',
        message: /ended at 2020-01-15.*new envelope/s,
      },
      {
        what: 'a lease not yet valid',
        args: ['--envelope', later],
        exit: ExitCode.policyDenied,
        code: 'TANDEM_LEASE',
        reason: 'not-yet-valid',
        message: /not valid yet/,
      },
      {
        what: 'one byte changed',
        args: ['--envelope', tampered],
        exit: ExitCode.integrity,
        code: 'TANDEM_INTEGRITY',
        reason: 'bad-signature',
        message: /altered or damaged/,
      },
    ];
    for (const row of attacks) await refused(row.args, row);

    // A valid envelope: the key is released and handed to the start (the mock refuses an
    // encrypted disk started without one).
    const ok = await up('--envelope', good);
    expect(ok.code, ok.stderr).toBe(ExitCode.ok);
    expect(ok.json).toMatchObject({ workspace: 'erp', version: '3.2.0', state: 'running' });
    expect(ok.stdout + ok.stderr).not.toContain(keyText.key);
    expect((await tandem('stop', 'erp', '--force')).code).toBe(ExitCode.ok);

    // The envelope in the state directory is found without --envelope.
    mkdirSync(join(endpoint, 'envelopes'), { recursive: true });
    copyFileSync(good, join(endpoint, 'envelopes', 'erp.envelope'));
    const found = await up();
    expect(found.code, found.stderr).toBe(ExitCode.ok);
    expect(found.json.state).toBe('running');
    // Resuming a VM saved to disk opens the encrypted disk again: the key is released again.
    expect((await tandem('--json', 'suspend', 'erp', '--save')).json.state).toBe('suspended');
    const resumed = await tandem('--json', 'resume', 'erp');
    expect(resumed.code, resumed.stderr).toBe(ExitCode.ok);
    expect(resumed.json.state).toBe('running');
    expect((await tandem('--json', 'suspend', 'erp', '--save')).json.state).toBe('suspended');
    const late = await tandem('--json', 'resume', 'erp', '--envelope', expired);
    expect(late.code).toBe(ExitCode.policyDenied);
    expect(late.json.error.code).toBe('TANDEM_LEASE');
    expect((await sessions())[0]?.state).toBe('suspended');
    expect((await tandem('--json', 'resume', 'erp')).json.state).toBe('running');
    expect((await tandem('stop', 'erp', '--force')).code).toBe(ExitCode.ok);

    // Through a running agent: it releases the key itself, from the state directory's envelope,
    // for each start and resume (the CLI sends no key over the socket).
    const state = new StateDir(endpoint);
    const agent = await runAgent({
      stateDir: endpoint,
      socketPath: join(endpoint, 'agent.sock'),
      openAdapter: (name, options) => openAdapter(state, name, options),
      diskKeys: (record) => sessionDiskKeys(endpoint, record),
    });
    try {
      const viaAgent = await tandem('up', ws, '--adapter', 'mock');
      expect(viaAgent.code, viaAgent.stderr).toBe(ExitCode.ok);
      expect(viaAgent.stdout).toContain('through the agent');
      expect(agent.agent.session('erp')?.state).toBe('running');
      expect((await tandem('--json', 'suspend', 'erp', '--save')).json.state).toBe('suspended');
      const again = await tandem('--json', 'resume', 'erp');
      expect(again.code, again.stderr).toBe(ExitCode.ok);
      expect(agent.agent.session('erp')?.state).toBe('running');
      expect((await tandem('--json', 'suspend', 'erp', '--save')).json.state).toBe('suspended');
      // Without its envelope the agent refuses the resume like tandem does in-process.
      const moved = join(tmp, 'moved.envelope');
      copyFileSync(join(endpoint, 'envelopes', 'erp.envelope'), moved);
      rmSync(join(endpoint, 'envelopes', 'erp.envelope'));
      const none = await tandem('--json', 'resume', 'erp');
      expect(none.code).toBe(ExitCode.notFound);
      expect(none.json.error.code).toBe('TANDEM_KEY_UNAVAILABLE');
      expect(agent.agent.session('erp')?.state).toBe('suspended');
      copyFileSync(moved, join(endpoint, 'envelopes', 'erp.envelope'));
      expect((await tandem('--json', 'resume', 'erp')).json.state).toBe('running');
      expect((await tandem('stop', 'erp', '--force')).code).toBe(ExitCode.ok);
    } finally {
      await agent.stop();
    }

    // The installed image was encrypted under another data key (re-keyed): refused.
    const rekeyed = installed(join(tmp, 'rekeyed'), 'f'.repeat(32));
    const wrong = await tandem('--json', 'up', rekeyed, '--adapter', 'mock');
    expect(wrong.code).toBe(ExitCode.integrity);
    expect(wrong.json.error).toMatchObject({ code: 'TANDEM_AUTH', details: { reason: 'wrong-data-key' } });
    expect(wrong.stderr).toMatch(/Ask for a new envelope/);

    // The clock set back before the trusted-time record (here: a record a month ahead).
    const ahead = new VirtualClock(Date.now() + 30 * DAY);
    const keys = await openEndpointKeys(keysDirOf(endpoint), { clock: ahead });
    await keys.trustedTime.observe(ahead.now(), 'clock');
    await refused([], {
      exit: ExitCode.integrity,
      code: 'TANDEM_CLOCK_ROLLBACK',
      message: /set back/i,
    });
  });
});
