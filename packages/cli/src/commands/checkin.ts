import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { InvalidInputError } from '@tandem/core';
import { ensurePrivateDir, parseEnvelope, readGrant, serializeEnvelope } from '@tandem/core/crypto';
import { WireEventSchema, type WireEvent } from '@tandem/core/management';
import type { CommandHost } from '../program.js';
import { envelopePathFor } from './keys-files.js';
import { endpointClient, readEndpointConfig, writeEndpointConfig, type EndpointConfig } from './login.js';
import { accountStateOf, openCredentialCache } from './login-cache.js';

async function heldEnvelopes(stateDir: string) {
  const dir = join(stateDir, 'envelopes');
  const names = await readdir(dir).catch(() => [] as string[]);
  const held: { workspace: string; envelopeId: string; issuedAt: string; notAfter: string }[] = [];
  for (const name of names.filter((n) => n.endsWith('.envelope'))) {
    const file = join(dir, name);
    try {
      const grant = readGrant(parseEnvelope(await readFile(file), file), file);
      held.push({
        workspace: grant.image.id,
        envelopeId: grant.envelopeId,
        issuedAt: grant.lease.issuedAt,
        notAfter: grant.lease.notAfter,
      });
    } catch {
      // A damaged envelope is not reported: the server sends a new one.
    }
  }
  return held;
}

async function readEvents(file: string): Promise<WireEvent[]> {
  const text = await readFile(file, 'utf8');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((line, i) => {
      const parsed = WireEventSchema.safeParse(JSON.parse(line));
      if (!parsed.success)
        throw new InvalidInputError(
          `${file}:${i + 1} is not a Tandem event (${parsed.error.issues[0]?.path.join('.') ?? ''}).`,
        );
      return parsed.data;
    });
}

/** `tandem checkin`: one check-in with the management server, for scripts (the host agent does it by itself). */
export function registerCheckin(program: Command, host: CommandHost): void {
  program
    .command('checkin')
    .description('check in with the management server: send events, get policy, assignments and envelopes')
    .option('--events <file>', 'events to send, as JSON lines (tandem events --json writes them)')
    .action(
      host.run(async (ctx, opts: { events?: string }) => {
        const config = await readEndpointConfig(ctx.stateDir);
        const client = await endpointClient(ctx, config);
        const events = opts.events !== undefined ? await readEvents(opts.events) : [];
        const envelopes = await heldEnvelopes(ctx.stateDir);
        const reply = await client.checkIn({
          ...(config.token !== undefined ? { token: config.token } : {}),
          ...(config.signedInAt !== undefined ? { credentialsCachedAt: config.signedInAt } : {}),
          envelopes,
          events,
        });
        if (reply.status === 'unchanged') {
          await writeEndpointConfig(ctx.stateDir, { ...config, token: reply.token });
          ctx.result(
            reply,
            `no change; ${reply.events.inserted} event(s) stored, ${reply.events.duplicates} already there`,
          );
          return;
        }
        const cache = await openCredentialCache(ctx.stateDir);
        for (const { workspace, envelope } of reply.envelopes) {
          const file = envelopePathFor(ctx.stateDir, workspace);
          await ensurePrivateDir(dirname(file));
          await writeFile(file, serializeEnvelope(envelope), { mode: 0o600 });
          // Forgotten with the user's cached credentials.
          if (config.user !== undefined) await cache.noteEnvelope(config.user, workspace);
        }
        for (const workspace of reply.deprovisioned)
          await rm(envelopePathFor(ctx.stateDir, workspace), { force: true });
        const next: EndpointConfig = { ...config, token: reply.token };
        if (reply.revokeCredentials) {
          // The account changed on the server: forget the cached sign-in and every envelope.
          if (config.user !== undefined)
            await cache.reconcile(config.user, accountStateOf(reply.revokeCredentials, Date.now()));
          await rm(join(ctx.stateDir, 'envelopes'), { recursive: true, force: true });
          delete next.user;
          delete next.signedInAt;
          delete next.token;
        }
        await writeEndpointConfig(ctx.stateDir, next);
        ctx.result(reply, [
          `${reply.events.inserted} event(s) stored, ${reply.events.duplicates} already there`,
          ...reply.workspaces.map(
            (w) =>
              `workspace ${w.workspace}${w.version ? `@${w.version}` : w.channel ? ` (${w.channel})` : ''}, lease ${w.lease}${w.encrypted ? ', encrypted' : ''}`,
          ),
          ...reply.envelopes.map((e) => `envelope for ${e.workspace} saved`),
          ...reply.deprovisioned.map((w) => `${w} is no longer assigned: its envelope was deleted`),
          ...(reply.revokeCredentials
            ? [`${reply.revokeCredentials.message} Cached credentials and envelopes were deleted.`]
            : []),
        ]);
      }),
    );
}
