import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { z } from 'zod';
import type { AdminService } from './admin.js';
import { ApiError } from './errors.js';
import { parseBody } from './http.js';

const Names = z.array(z.string().min(1).max(512)).max(1000);
const AssignBody = z.strictObject({
  id: z.string().optional(),
  workspace: z.string(),
  channel: z.string().optional(),
  version: z.string().optional(),
  users: Names.optional(),
  groups: Names.optional(),
  policyLayers: Names.optional(),
  lease: z.string().optional(),
});
const IdBody = z.strictObject({ id: z.string().min(1).max(128) });
const UserBody = z.strictObject({ user: z.string().min(1).max(256) });
const ChannelBody = z.strictObject({ workspace: z.string(), channel: z.string(), version: z.string() });
const PolicyBody = z.strictObject({ name: z.string().min(1).max(128), document: z.unknown() });
const EventsBody = z.strictObject({
  device: z.string().optional(),
  user: z.string().optional(),
  workspace: z.string().optional(),
  type: z.union([z.string(), z.array(z.string())]).optional(),
  since: z.string().optional(),
  until: z.string().optional(),
  limit: z.number().int().positive().max(10_000).optional(),
  after: z.string().optional(),
});

/**
 * The admin API: `POST /v1/admin/<action>` with a JSON body and `authorization: Bearer <token>`
 * (the token `tandem server init` writes, 0600). Reports: `endpoints`, `events`, `failures`,
 * `versions`, `audit`; changes: `assign`, `unassign`, `policy`, `channel` (a channel's new version), `revoke-device`; the server's
 * view: `explain`. Each change is audited with the actor `admin-api`.
 *
 * @example
 * ```ts
 * const api = new AdminApi(admin, token);
 * createManagementServer({ service, admin: api });
 * ```
 */
export class AdminApi {
  readonly #admin: AdminService;
  readonly #tokenHash: Buffer;

  constructor(admin: AdminService, token: string) {
    if (token.length < 16) throw new Error('An admin token has at least 16 characters.');
    this.#admin = admin;
    this.#tokenHash = createHash('sha256').update(token).digest();
  }

  #check(headers: IncomingHttpHeaders): void {
    const auth = headers.authorization ?? '';
    const m = /^Bearer (.+)$/.exec(auth);
    const given = createHash('sha256')
      .update(m?.[1] ?? '')
      .digest();
    if (!m || !timingSafeEqual(given, this.#tokenHash))
      throw new ApiError(
        401,
        'TANDEM_AUTH',
        'bad-admin-token',
        'The admin API needs the admin token (authorization: Bearer ...).',
      );
  }

  /** Serves one admin request. */
  async handle(method: string, path: string, headers: IncomingHttpHeaders, body: Buffer): Promise<unknown> {
    this.#check(headers);
    if (method !== 'POST') throw new ApiError(405, 'TANDEM_INVALID_INPUT', 'method', 'The admin API takes POST.');
    const action = path.slice('/v1/admin/'.length);
    const actor = 'admin-api';
    switch (action) {
      case 'endpoints':
        return { rows: await this.#admin.endpoints() };
      case 'events':
        return this.#admin.events(parseBody(EventsBody, body));
      case 'failures':
        return { rows: await this.#admin.failures() };
      case 'versions':
        return { rows: await this.#admin.versions() };
      case 'audit':
        return { rows: await this.#admin.audit() };
      case 'assign':
        return this.#admin.assign(actor, parseBody(AssignBody, body));
      case 'unassign':
        return { removed: await this.#admin.unassign(actor, parseBody(IdBody, body).id) };
      case 'policy': {
        const b = parseBody(PolicyBody, body);
        await this.#admin.putPolicyLayer(actor, b.name, b.document);
        return { name: b.name };
      }
      case 'revoke-device':
        return { revoked: await this.#admin.revokeDevice(actor, parseBody(IdBody, body).id) };
      case 'channel': {
        const b = parseBody(ChannelBody, body);
        return { assignments: await this.#admin.setChannelVersion(actor, b.workspace, b.channel, b.version) };
      }
      case 'explain':
        return this.#admin.explain(parseBody(UserBody, body).user);
      default:
        throw new ApiError(404, 'TANDEM_NOT_FOUND', 'no-route', `There is no admin action "${action}".`);
    }
  }
}
