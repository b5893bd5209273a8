import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { z } from 'zod';
import type { AdminService } from './admin.js';
import { type ConsoleSessions } from './console-session.js';
import { ApiError } from './errors.js';
import { parseBody } from './http.js';
import { eventsCsv } from './store/reports.js';

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
  /** `csv`: the page as CSV text in `{ csv, next }` (the console's export). */
  format: z.enum(['json', 'csv']).optional(),
});
// The console's actions (issue 16).
const AuditBody = z.strictObject({
  actor: z.string().max(256).optional(),
  since: z.string().optional(),
  limit: z.number().int().positive().max(10_000).optional(),
});
const EndpointSearchBody = z.strictObject({
  search: z.string().max(256).optional(),
  state: z.enum(['online', 'offline', 'never', 'revoked']).optional(),
  workspace: z.string().max(256).optional(),
  version: z.string().max(64).optional(),
  checkedInAfter: z.string().optional(),
  checkedInBefore: z.string().optional(),
  sort: z.enum(['device', 'user', 'hostName', 'lastCheckInAt', 'enrolledAt']).optional(),
  order: z.enum(['asc', 'desc']).optional(),
  limit: z.number().int().min(1).max(500).optional(),
  offset: z.number().int().min(0).optional(),
});
const DirectorySearchBody = z.strictObject({
  query: z.string().max(256),
  kind: z.enum(['user', 'group', 'all']).optional(),
  limit: z.number().int().min(1).max(200).optional(),
});
const SearchBody = z.strictObject({ search: z.string().max(256).optional() });
const NameBody = z.strictObject({ name: z.string().min(1).max(128) });
const ValidateBody = z.strictObject({ document: z.unknown() });
const QuestionSchema = z.union([
  z.strictObject({ url: z.string().min(1).max(8192), from: z.enum(['host', 'guest']).optional() }),
  z.strictObject({
    transfer: z.strictObject({
      channel: z.string().min(1).max(64),
      direction: z.enum(['host-to-guest', 'guest-to-host']),
      contentType: z.enum(['text', 'image', 'files']).optional(),
      sizeBytes: z.number().int().min(0).optional(),
    }),
  }),
  z.strictObject({
    usage: z.strictObject({
      online: z.boolean(),
      lastOnlineCheckAt: z.string().optional(),
      lastActivityAt: z.string().optional(),
    }),
  }),
  z.strictObject({ provisioning: z.literal(true) }),
]);
const ExplainBody = z.strictObject({
  user: z.string().min(1).max(256).optional(),
  device: z.string().min(1).max(128).optional(),
  workspace: z.string().min(1).max(63).optional(),
  question: QuestionSchema.optional(),
});

/** What {@link AdminApi} takes besides the service and token. */
export interface AdminApiOptions {
  /** Console sessions: a request with the session cookie and its CSRF header is let in too. */
  readonly sessions?: ConsoleSessions | undefined;
}

/**
 * The admin API: `POST /v1/admin/<action>` with a JSON body and either `authorization: Bearer
 * <token>` (the token `tandem server init` writes, 0600; the CLI) or a console session's
 * cookie with its `x-csrf-token` header (the browser). Reports: `endpoints`, `events`,
 * `failures`, `versions`, `audit`, `overview`, `endpoint-search`, `device`, `channels`,
 * `assignments`, `policies`, `users`, `groups`, `directory-search`; changes: `assign`,
 * `unassign`, `policy`, `policy-remove`, `channel` (a channel's new version), `revoke-device`;
 * checks: `validate-policy`; the server's view: `explain`. Each change is audited with the
 * actor `admin-api` (bearer) or `console:<user>` (a console session).
 *
 * @example
 * ```ts
 * const api = new AdminApi(admin, token, { sessions });
 * createManagementServer({ service, admin: api });
 * ```
 */
export class AdminApi {
  readonly #admin: AdminService;
  readonly #tokenHash: Buffer;
  readonly #sessions: ConsoleSessions | undefined;

  constructor(admin: AdminService, token: string, options: AdminApiOptions = {}) {
    if (token.length < 16) throw new Error('An admin token has at least 16 characters.');
    this.#admin = admin;
    this.#tokenHash = createHash('sha256').update(token).digest();
    this.#sessions = options.sessions;
  }

  /** The console sessions this API accepts, if any. */
  get sessions(): ConsoleSessions | undefined {
    return this.#sessions;
  }

  /**
   * Who is asking: `admin-api` for the bearer token, `console:<user>` for a console session
   * (whose CSRF header must match unless `csrf` is false: a GET such as the event stream).
   * 401 without either, 403 `csrf` for a session without its token.
   */
  async authenticate(headers: IncomingHttpHeaders, options: { csrf?: boolean; touch?: boolean } = {}): Promise<string> {
    const auth = headers.authorization;
    if (auth !== undefined) {
      const m = /^Bearer (.+)$/.exec(auth);
      const given = createHash('sha256')
        .update(m?.[1] ?? '')
        .digest();
      if (m && timingSafeEqual(given, this.#tokenHash)) return 'admin-api';
      throw new ApiError(401, 'TANDEM_AUTH', 'bad-admin-token', "The admin token given is not this server's.");
    }
    const session = this.#sessions
      ? await this.#sessions.find(headers, options.touch === false ? { touch: false } : {})
      : undefined;
    if (session) {
      if (options.csrf !== false) this.#sessions?.checkCsrf(session, headers);
      return `console:${session.record.user}`;
    }
    throw new ApiError(
      401,
      'TANDEM_AUTH',
      'bad-admin-token',
      'The admin API needs the admin token (authorization: Bearer ...) or a console session.',
    );
  }

  /** Serves one admin request. */
  async handle(method: string, path: string, headers: IncomingHttpHeaders, body: Buffer): Promise<unknown> {
    const actor = await this.authenticate(headers);
    if (method !== 'POST') throw new ApiError(405, 'TANDEM_INVALID_INPUT', 'method', 'The admin API takes POST.');
    const action = path.slice('/v1/admin/'.length);
    switch (action) {
      case 'endpoints':
        return { rows: await this.#admin.endpoints() };
      case 'events': {
        const { format, ...filter } = parseBody(EventsBody, body);
        const page = await this.#admin.events(filter);
        return format === 'csv' ? { csv: eventsCsv(page), next: page.next } : page;
      }
      case 'failures':
        return { rows: await this.#admin.failures() };
      case 'versions':
        return { rows: await this.#admin.versions() };
      case 'audit': {
        const b = parseBody(AuditBody, body);
        return {
          rows: await this.#admin.audit(Object.fromEntries(Object.entries(b).filter(([, v]) => v !== undefined))),
        };
      }
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
      case 'explain': {
        const b = parseBody(ExplainBody, body);
        if (b.question === undefined) {
          if (b.user === undefined)
            throw new ApiError(
              400,
              'TANDEM_INVALID_INPUT',
              'malformed',
              'explain needs a user (or a device and a question).',
            );
          return this.#admin.explain(b.user);
        }
        return this.#admin.explainQuestion({
          user: b.user,
          device: b.device,
          workspace: b.workspace,
          question: b.question,
        });
      }
      case 'overview':
        return this.#admin.overview();
      case 'endpoint-search':
        return this.#admin.searchEndpoints(parseBody(EndpointSearchBody, body));
      case 'device':
        return this.#admin.deviceDetail(parseBody(IdBody, body).id);
      case 'directory-search': {
        const b = parseBody(DirectorySearchBody, body);
        return this.#admin.searchDirectory(b.query, {
          ...(b.kind !== undefined ? { kind: b.kind } : {}),
          ...(b.limit !== undefined ? { limit: b.limit } : {}),
        });
      }
      case 'users':
        return { rows: await this.#admin.listUsers(parseBody(SearchBody, body).search) };
      case 'groups':
        return { rows: await this.#admin.listGroups(parseBody(SearchBody, body).search) };
      case 'assignments':
        return { rows: await this.#admin.listAssignments() };
      case 'policies':
        return { rows: await this.#admin.listPolicyLayers() };
      case 'policy-remove':
        return { removed: await this.#admin.removePolicyLayer(actor, parseBody(NameBody, body).name) };
      case 'validate-policy':
        return this.#admin.validatePolicyLayer(parseBody(ValidateBody, body).document);
      case 'channels':
        return this.#admin.channels();
      default:
        throw new ApiError(404, 'TANDEM_NOT_FOUND', 'no-route', `There is no admin action "${action}".`);
    }
  }
}
