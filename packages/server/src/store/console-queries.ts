// Checks and normalises the console's store queries once for both stores (issue 16).
import { InvalidInputError } from '@tandem/core';
import { isoTime } from './common.js';
import type { EndpointQuery, EndpointState } from './types.js';

/** The endpoint table's largest page. */
export const MAX_ENDPOINT_PAGE = 500;
/** The endpoint table's page without a limit. */
export const DEFAULT_ENDPOINT_PAGE = 50;

const SORTS = {
  device: 'id',
  user: 'user_name',
  hostName: 'host_name',
  lastCheckInAt: 'last_check_in_at',
  enrolledAt: 'enrolled_at',
} as const;
const STATES: readonly EndpointState[] = ['online', 'offline', 'never', 'revoked'];

/** An {@link EndpointQuery} checked, with its sort as a column name. */
export interface EndpointQueryParts {
  readonly search: string | undefined;
  readonly state: EndpointState | undefined;
  readonly onlineSince: string | undefined;
  readonly workspace: string | undefined;
  readonly version: string | undefined;
  readonly checkedInAfter: string | undefined;
  readonly checkedInBefore: string | undefined;
  readonly column: (typeof SORTS)[keyof typeof SORTS];
  readonly desc: boolean;
  readonly limit: number;
  readonly offset: number;
}

/** Checks an endpoint query; every bad field is an InvalidInputError naming it. */
export function endpointQueryParts(q: EndpointQuery): EndpointQueryParts {
  const sort = q.sort ?? 'device';
  if (!(sort in SORTS))
    throw new InvalidInputError(
      `sort "${String(sort)}" is not a column: expected one of ${Object.keys(SORTS).join(', ')}.`,
    );
  if (q.order !== undefined && q.order !== 'asc' && q.order !== 'desc')
    throw new InvalidInputError(`order "${String(q.order)}" is not an order: expected asc or desc.`);
  if (q.state !== undefined && !STATES.includes(q.state))
    throw new InvalidInputError(`state "${String(q.state)}" is not a state: expected one of ${STATES.join(', ')}.`);
  if (q.state !== undefined && q.state !== 'revoked' && q.state !== 'never' && q.onlineSince === undefined)
    throw new InvalidInputError(`state "${q.state}" needs onlineSince (the time a check-in counts as online from).`);
  const limit = q.limit ?? DEFAULT_ENDPOINT_PAGE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_ENDPOINT_PAGE)
    throw new InvalidInputError(
      `limit ${limit} is not a page size: expected a whole number from 1 to ${MAX_ENDPOINT_PAGE}.`,
    );
  const offset = q.offset ?? 0;
  if (!Number.isInteger(offset) || offset < 0)
    throw new InvalidInputError(`offset ${offset} is not an offset: expected a whole number from 0.`);
  const text = (v: string | undefined, what: string): string | undefined => {
    if (v === undefined || v === '') return undefined;
    if (v.length > 256) throw new InvalidInputError(`${what} is longer than 256 characters.`);
    return v;
  };
  return {
    search: text(q.search, 'search'),
    state: q.state,
    onlineSince: q.onlineSince !== undefined ? isoTime(q.onlineSince, 'onlineSince') : undefined,
    workspace: text(q.workspace, 'workspace'),
    version: text(q.version, 'version'),
    checkedInAfter: q.checkedInAfter !== undefined ? isoTime(q.checkedInAfter, 'checkedInAfter') : undefined,
    checkedInBefore: q.checkedInBefore !== undefined ? isoTime(q.checkedInBefore, 'checkedInBefore') : undefined,
    column: SORTS[sort],
    desc: q.order === 'desc',
    limit,
    offset,
  };
}
