/**
 * Matching users and groups. User ids compare case-insensitively. Groups are names or
 * distinguished names (DNs); DNs compare by their parts, case-insensitively, ignoring spaces
 * around `,` and `=`; a plain name matches a DN whose first part (its CN) is that name, so
 * `ERP Users` matches `CN=ERP Users,OU=Groups,DC=corp,DC=example`.
 */

function splitUnescaped(text: string, sep: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i] ?? '';
    if (c === '\\' && i + 1 < text.length) {
      cur += c + (text[i + 1] ?? '');
      i++;
    } else if (c === sep) {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  return parts;
}

interface Principal {
  /** Normalized DN, or undefined for a plain name. */
  readonly dn?: string;
  /** The plain name, or the value of a DN's first part. */
  readonly name: string;
}

function isDn(text: string): boolean {
  return /^\s*[A-Za-z][A-Za-z0-9-]*\s*=/.test(text) || /^\s*\d+(\.\d+)+\s*=/.test(text);
}

/** Normalizes a DN for comparison: `CN = ERP Users , dc=Corp` becomes `cn=erp users,dc=corp`. */
export function normalizeDn(text: string): string {
  return splitUnescaped(text.trim(), ',')
    .map((rdn) =>
      splitUnescaped(rdn, '+')
        .map((ava) => {
          const eq = ava.indexOf('=');
          return `${ava.slice(0, eq).trim()}=${ava.slice(eq + 1).trim()}`.toLowerCase();
        })
        .join('+'),
    )
    .join(',');
}

function principal(text: string): Principal {
  if (!isDn(text)) return { name: text.trim().toLowerCase() };
  const dn = normalizeDn(text);
  const first = splitUnescaped(dn, ',')[0] ?? '';
  const value = first.slice(first.indexOf('=') + 1).replace(/\\(.)/g, '$1');
  return { dn, name: value };
}

/** True when a group written in a policy (`entry`) is the subject's group `group`. */
export function groupMatches(entry: string, group: string): boolean {
  const a = principal(entry);
  const b = principal(group);
  if (a.dn !== undefined && b.dn !== undefined) return a.dn === b.dn;
  return a.name === b.name;
}

/** True when a user written in a policy is the subject's user id (case-insensitive). */
export function userMatches(entry: string, user: string): boolean {
  return entry.trim().toLowerCase() === user.trim().toLowerCase();
}

/** Why a list of users and groups covers a subject: the matching entry, or undefined. */
export function findPrincipal(
  users: readonly string[],
  groups: readonly string[],
  subject: { readonly user?: string; readonly groups?: readonly string[] },
):
  | { readonly kind: 'user' | 'group'; readonly index: number; readonly entry: string; readonly matched: string }
  | undefined {
  if (subject.user !== undefined) {
    const user = subject.user;
    const index = users.findIndex((u) => userMatches(u, user));
    if (index >= 0) return { kind: 'user', index, entry: users[index] ?? '', matched: user };
  }
  for (let index = 0; index < groups.length; index++) {
    const entry = groups[index] ?? '';
    const matched = subject.groups?.find((g) => groupMatches(entry, g));
    if (matched !== undefined) return { kind: 'group', index, entry, matched };
  }
  return undefined;
}
