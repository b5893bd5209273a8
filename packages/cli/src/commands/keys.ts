import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { generateSigningKey, keyIdOf, NotFoundError, signingKeyFrom, InvalidInputError } from '@tandem/core';
import {
  DataKey,
  DeviceKeys,
  formatDevicePublicKey,
  KeyReleaseAuthority,
  keysDirOf,
  openEndpointKeys,
  TrustedTime,
  TRUSTED_TIME_FILE,
  parseEnvelope,
  readGrant,
  serializeEnvelope,
  writePrivateFile,
  type KeyGrant,
} from '@tandem/core/crypto';
import type { CliContext } from '../context.js';
import type { CommandHost } from '../program.js';
import {
  readAuthorityPublic,
  readDataKeyFile,
  readTrustedAuthorities,
  writeDataKeyFile,
  writeTrustedAuthorities,
} from './keys-files.js';

/** `tandem keys ...`: device keys, data keys, the authority's key, sealing and inspecting envelopes. */
export function registerKeys(program: Command, host: CommandHost): void {
  const keys = program.command('keys').description('encryption keys: this device, images, envelopes');
  const device = keys.command('device').description("this device's key pair (X25519 + Ed25519)");
  device
    .command('init')
    .description("make this device's key pair in the state directory (0600); prints its public key")
    .option('--replace', 'replace existing keys (every envelope sealed for the old ones becomes useless)')
    .action(
      host.run(async (ctx, opts: { replace?: boolean }) => {
        const dir = keysDirOf(ctx.stateDir);
        if (opts.replace) {
          const made = await DeviceKeys.create(dir, { replace: true });
          await rm(join(dir, TRUSTED_TIME_FILE), { force: true });
          await TrustedTime.open(dir, made, { create: true });
          showDevice(ctx, made, true);
          return;
        }
        const existing = await DeviceKeys.load(dir);
        if (existing) {
          showDevice(ctx, existing, false);
          return;
        }
        showDevice(ctx, (await openEndpointKeys(dir)).device, true);
      }),
    );
  device
    .command('show')
    .description("print this device's public key (made on first use); never the private key")
    .action(
      host.run(async (ctx) => {
        const dir = keysDirOf(ctx.stateDir);
        const existing = await DeviceKeys.load(dir);
        showDevice(ctx, existing ?? (await openEndpointKeys(dir)).device, existing === undefined);
      }),
    );

  keys
    .command('image')
    .description("an image's data key")
    .command('new')
    .description(
      'make a random 256-bit data key for an image, in a file of mode 0600 (keep it safe: it opens every version)',
    )
    .requiredOption('--image <id>', "the image's id: its workspace name")
    .requiredOption('--out <file>', 'data key file to write')
    .action(
      host.run(async (ctx, opts: { image: string; out: string }) => {
        using key = DataKey.generate();
        await writeDataKeyFile(opts.out, opts.image, key);
        ctx.result(
          { file: opts.out, imageId: opts.image, keyId: key.id },
          `${opts.out}: data key ${key.id} for image ${opts.image}`,
        );
      }),
    );

  keys
    .command('authority')
    .description("the key-release authority's signing key")
    .command('new')
    .description('make an Ed25519 signing key for sealing envelopes (PEM, 0600) and its public key (FILE.pub)')
    .requiredOption('--out <file>', 'private key file to write; the public key goes to FILE.pub')
    .action(
      host.run(async (ctx, opts: { out: string }) => {
        const key = generateSigningKey();
        await writePrivateFile(opts.out, String(key.privateKey.export({ format: 'pem', type: 'pkcs8' })));
        const pub = String(createPublicKey(key.privateKey).export({ format: 'pem', type: 'spki' }));
        await writePrivateFile(`${opts.out}.pub`, pub);
        ctx.result({ file: opts.out, publicFile: `${opts.out}.pub`, keyid: key.keyid }, [
          `${opts.out}: authority key ${key.keyid}`,
          `endpoints trust it with: tandem keys trust ${opts.out}.pub`,
        ]);
      }),
    );

  keys
    .command('trust')
    .description('trust a key-release authority on this device (its public key file)')
    .argument('<public-key>', 'PEM public key file (FILE.pub from tandem keys authority new)')
    .action(
      host.run(async (ctx, file: string) => {
        const entry = await readAuthorityPublic(file);
        const all = await readTrustedAuthorities(ctx.stateDir);
        const keyid = keyIdOf(entry);
        if (!all.some((k) => keyIdOf(k) === keyid)) all.push(entry);
        await writeTrustedAuthorities(ctx.stateDir, all);
        ctx.result({ keyid, trusted: all.map((k) => keyIdOf(k)) }, `trusted authority ${keyid}`);
      }),
    );

  keys
    .command('seal')
    .description("seal an image's data key for one device in a signed envelope with an offline lease")
    .requiredOption('--key <file>', 'the data key file (tandem keys image new)')
    .requiredOption('--authority-key <file>', "the authority's private key (tandem keys authority new)")
    .requiredOption('--device <pubkey>', 'the device public key (tandem-device1:..., from tandem keys device show)')
    .option('--image <id>', "the image's id (default: the one in the key file)")
    .option('--versions <range>', 'versions covered: *, 3.2.0, ">=3.0.0 <4" (default *)', '*')
    .requiredOption('--not-after <time>', 'end of the offline lease: ISO 8601 time or duration from now (P14D)')
    .option('--not-before <time>', 'start of the lease (default now)')
    .option('--policy <file>', 'the policy the lease is issued under (its SHA-256 is recorded)')
    .requiredOption('--out <file>', 'envelope file to write')
    .action(host.run(async (ctx, opts: SealFlags) => seal(ctx, opts)));

  keys
    .command('inspect')
    .description('what an envelope grants, to whom, until when (never the key)')
    .argument('<envelope>', 'envelope file')
    .action(
      host.run(async (ctx, file: string) => {
        const envelope = parseEnvelope(await readFile(file), file);
        const grant = readGrant(envelope, file);
        const mine = await DeviceKeys.load(keysDirOf(ctx.stateDir));
        const trusted = (await readTrustedAuthorities(ctx.stateDir)).some(
          (k) => keyIdOf(k) === envelope.signature.keyid,
        );
        ctx.result(describeGrant(grant, mine?.deviceId, trusted), inspectLines(grant, mine?.deviceId, trusted));
      }),
    );
}

interface SealFlags {
  key: string;
  authorityKey: string;
  device: string;
  image?: string;
  versions: string;
  notAfter: string;
  notBefore?: string;
  policy?: string;
  out: string;
}

async function seal(ctx: CliContext, opts: SealFlags): Promise<void> {
  const { imageId, key } = await readDataKeyFile(opts.key);
  try {
    const pem = await readFile(opts.authorityKey, 'utf8').catch(() => {
      throw new NotFoundError(`Authority key file ${opts.authorityKey} does not exist.`);
    });
    let signing;
    try {
      signing = signingKeyFrom(createPrivateKey(pem));
    } catch (err) {
      throw new InvalidInputError(`${opts.authorityKey} is not an Ed25519 private key in PEM.`, { cause: err });
    }
    const policySha256 = opts.policy
      ? createHash('sha256')
          .update(await readFile(opts.policy))
          .digest('hex')
      : undefined;
    const envelope = await new KeyReleaseAuthority(signing).seal({
      dataKey: key,
      device: opts.device,
      imageId: opts.image ?? imageId,
      versions: opts.versions,
      notAfter: opts.notAfter,
      ...(opts.notBefore !== undefined ? { notBefore: opts.notBefore } : {}),
      ...(policySha256 !== undefined ? { policySha256 } : {}),
    });
    await writePrivateFile(opts.out, serializeEnvelope(envelope));
    const grant = readGrant(envelope, opts.out);
    ctx.result({ file: opts.out, ...describeGrant(grant, undefined, true) }, [
      `${opts.out}:`,
      ...inspectLines(grant, undefined, true),
    ]);
  } finally {
    key.dispose();
  }
}

function showDevice(ctx: CliContext, device: DeviceKeys, created: boolean): void {
  const text = formatDevicePublicKey(device.publicKey);
  ctx.result({ deviceId: device.deviceId, publicKey: text, createdAt: device.createdAt, created }, [
    `device ${device.deviceId}${created ? ' (new)' : ''}`,
    text,
  ]);
}

function describeGrant(grant: KeyGrant, myDevice: string | undefined, trusted: boolean): Record<string, unknown> {
  return {
    envelopeId: grant.envelopeId,
    authority: grant.authority,
    authorityTrusted: trusted,
    device: grant.device.id,
    ...(myDevice !== undefined ? { forThisDevice: grant.device.id === myDevice } : {}),
    image: grant.image.id,
    versions: grant.image.versions,
    dataKeyId: grant.dataKeyId,
    lease: grant.lease,
  };
}

function inspectLines(grant: KeyGrant, myDevice: string | undefined, trusted: boolean): string[] {
  return [
    `image ${grant.image.id}, versions ${grant.image.versions} (data key ${grant.dataKeyId})`,
    `for device ${grant.device.id}${myDevice === undefined ? '' : grant.device.id === myDevice ? ' (this device)' : ' (NOT this device)'}`,
    `lease: issued ${grant.lease.issuedAt}, valid ${grant.lease.notBefore} to ${grant.lease.notAfter}, policy sha256 ${grant.lease.policySha256}`,
    `signed by authority ${grant.authority}${trusted ? '' : ' (not trusted here)'}`,
  ];
}
