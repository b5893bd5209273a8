/**
 * Reading account state out of directory attributes, as Active Directory and OpenLDAP's ppolicy
 * overlay write them. Pure functions over the attribute values (tested against recorded values).
 */
import type { AccountState } from './directory.js';

/** An LDAP entry as ldapts returns it. */
export interface LdapEntry {
  readonly dn: string;
  readonly [attribute: string]: Buffer | Buffer[] | string[] | string;
}

/**
 * Every value of `attribute` (names compare case-insensitively, as LDAP's do).
 *
 * @example
 * ```ts
 * valuesOf(entry, 'memberof'); // every memberOf value, as strings
 * ```
 */
export function valuesOf(entry: LdapEntry, attribute: string): string[] {
  const want = attribute.toLowerCase();
  for (const [k, v] of Object.entries(entry)) {
    if (k.toLowerCase() !== want || k === 'dn') continue;
    const list = Array.isArray(v) ? v : [v];
    return list.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x)));
  }
  return [];
}

/** The first value of `attribute`, or undefined. */
export function valueOf(entry: LdapEntry, attribute: string): string | undefined {
  return valuesOf(entry, attribute)[0];
}

/**
 * An LDAP GeneralizedTime (`20260301080000Z`, `20260301080000.123Z`, `202603010800Z`, with a
 * `+hhmm` offset) as epoch milliseconds, or undefined when it is not one.
 *
 * @example
 * ```ts
 * parseGeneralizedTime('20260301080000Z'); // Date.parse('2026-03-01T08:00:00Z')
 * ```
 */
export function parseGeneralizedTime(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})?(\d{2})?(?:[.,](\d{1,6}))?(Z|[+-]\d{4})$/.exec(text.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const ms = frac === undefined ? 0 : Math.floor(Number(`0.${frac}`) * 1000);
  let t = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi ?? 0), Number(s ?? 0), ms);
  if (zone !== undefined && zone !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    t -= sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(3, 5))) * 60_000;
  }
  return Number.isNaN(t) ? undefined : t;
}

/** Formats epoch milliseconds as a GeneralizedTime with seconds (`20260301080000Z`). */
export function formatGeneralizedTime(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:T]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

const FILETIME_EPOCH_OFFSET_MS = 11_644_473_600_000n;
const INT64_MAX = 9_223_372_036_854_775_807n;

/**
 * An Active Directory FILETIME (100-ns intervals since 1601-01-01 UTC: `accountExpires`,
 * `pwdLastSet`, `lockoutTime`) as epoch milliseconds; undefined for 0 and for 2^63-1, which
 * both mean "never" (or "not set").
 *
 * @example
 * ```ts
 * new Date(parseFileTime('134129520000000000')!).toISOString(); // '2026-01-15T12:00:00.000Z'
 * ```
 */
export function parseFileTime(text: string | undefined): number | undefined {
  if (text === undefined || !/^-?\d{1,20}$/.test(text.trim())) return undefined;
  const v = BigInt(text.trim());
  if (v <= 0n || v >= INT64_MAX) return undefined;
  return Number(v / 10_000n - FILETIME_EPOCH_OFFSET_MS);
}

/**
 * An Active Directory interval (`maxPwdAge`, `lockoutDuration`: negative 100-ns counts) as
 * milliseconds; undefined for 0 and for -2^63, which mean "never".
 *
 * @example
 * ```ts
 * parseAdInterval('-36288000000000'); // 42 days in ms
 * ```
 */
export function parseAdInterval(text: string | undefined): number | undefined {
  if (text === undefined || !/^-?\d{1,20}$/.test(text.trim())) return undefined;
  const v = BigInt(text.trim());
  if (v === 0n || v <= -INT64_MAX) return undefined;
  return Number((v < 0n ? -v : v) / 10_000n);
}

/** Bits of `userAccountControl`. */
export const UAC = {
  ACCOUNTDISABLE: 0x2,
  LOCKOUT: 0x10,
  DONT_EXPIRE_PASSWORD: 0x10000,
  PASSWORD_EXPIRED: 0x800000,
} as const;

/** What a directory entry says about an account, beyond {@link AccountState}. */
export interface ParsedAccount {
  readonly state: AccountState;
  /** The password has expired (by the directory's flag or by its age). */
  readonly passwordExpired: boolean;
  /** The password must be changed before anything else (AD pwdLastSet=0, ppolicy pwdReset). */
  readonly mustChangePassword: boolean;
}

/** The domain-wide settings AD keeps on the domain's root entry. */
export interface AdDomainPolicy {
  /** `maxPwdAge` (a negative 100-ns interval). */
  readonly maxPwdAge?: string | undefined;
  /** `lockoutDuration` (a negative 100-ns interval). */
  readonly lockoutDuration?: string | undefined;
}

/** The attributes {@link adAccount} reads. */
export const AD_STATE_ATTRIBUTES = [
  'userAccountControl',
  'msDS-User-Account-Control-Computed',
  'msDS-UserPasswordExpiryTimeComputed',
  'accountExpires',
  'pwdLastSet',
  'lockoutTime',
] as const;

const iso = (t: number | undefined): string | undefined => (t === undefined ? undefined : new Date(t).toISOString());

/**
 * An Active Directory account's state. Lockout comes from `msDS-User-Account-Control-Computed`
 * (bit 0x10: AD does not maintain userAccountControl's lockout bit), an expired password from
 * its bit 0x800000 or from the expiry time; disabled from `userAccountControl` 0x2; the account's
 * expiry from `accountExpires`; the password's age from `pwdLastSet` (0: must change) and its
 * expiry from `msDS-UserPasswordExpiryTimeComputed`, or from `pwdLastSet` plus the domain's
 * `maxPwdAge` where that is not returned.
 *
 * @example
 * ```ts
 * const { state, passwordExpired } = adAccount(entry, { maxPwdAge: '-36288000000000' }, Date.now());
 * ```
 */
export function adAccount(entry: LdapEntry, domain: AdDomainPolicy, now: number): ParsedAccount {
  const uac = Number(valueOf(entry, 'userAccountControl') ?? 0);
  const computed = Number(valueOf(entry, 'msDS-User-Account-Control-Computed') ?? 0);
  const pwdLastSetText = valueOf(entry, 'pwdLastSet');
  const changed = parseFileTime(pwdLastSetText);
  const accountExpires = parseFileTime(valueOf(entry, 'accountExpires'));
  const neverExpires = (uac & UAC.DONT_EXPIRE_PASSWORD) !== 0;
  let passwordExpiresAt: number | undefined;
  const computedExpiry = valueOf(entry, 'msDS-UserPasswordExpiryTimeComputed');
  if (!neverExpires) {
    if (computedExpiry !== undefined) passwordExpiresAt = parseFileTime(computedExpiry);
    else {
      const maxAge = parseAdInterval(domain.maxPwdAge);
      if (changed !== undefined && maxAge !== undefined) passwordExpiresAt = changed + maxAge;
    }
  }
  const locked = (computed & UAC.LOCKOUT) !== 0;
  const lockoutTime = parseFileTime(valueOf(entry, 'lockoutTime'));
  const lockoutMs = parseAdInterval(domain.lockoutDuration);
  const lockedUntil =
    locked && lockoutTime !== undefined && lockoutMs !== undefined ? lockoutTime + lockoutMs : undefined;
  return {
    state: {
      disabled: (uac & UAC.ACCOUNTDISABLE) !== 0,
      locked,
      lockedUntil: iso(lockedUntil),
      expired: accountExpires !== undefined && accountExpires <= now,
      passwordChangedAt: iso(changed),
      passwordExpiresAt: iso(passwordExpiresAt),
    },
    passwordExpired:
      (computed & UAC.PASSWORD_EXPIRED) !== 0 || (passwordExpiresAt !== undefined && passwordExpiresAt <= now),
    mustChangePassword: pwdLastSetText !== undefined && pwdLastSetText.trim() === '0',
  };
}

/** What an OpenLDAP ppolicy password policy entry says (seconds, as ppolicy writes them). */
export interface PpolicySettings {
  readonly pwdMaxAge?: number | undefined;
  readonly pwdLockoutDuration?: number | undefined;
  readonly pwdGraceAuthNLimit?: number | undefined;
}

/** The attributes {@link openLdapAccount} reads (operational ones must be asked for by name). */
export const OPENLDAP_STATE_ATTRIBUTES = [
  'pwdAccountLockedTime',
  'pwdChangedTime',
  'pwdGraceUseTime',
  'pwdReset',
  'pwdPolicySubentry',
  'pwdEndTime',
  'shadowExpire',
] as const;

/** The value ppolicy writes for an account locked by an administrator until one unlocks it. */
export const PPOLICY_PERMANENT_LOCK = '000001010000Z';

/**
 * An OpenLDAP account's state under the ppolicy overlay: locked from `pwdAccountLockedTime`
 * (a locked bind fails with error 49 like a wrong password, so this is how the two are told
 * apart), and locked until `pwdLockoutDuration` has passed, or for good when that is 0;
 * `000001010000Z` is an administrator's lock and reads as disabled; the password's age from
 * `pwdChangedTime` and its expiry from the policy's `pwdMaxAge`; grace logins in use
 * (`pwdGraceUseTime`) mean it has expired; `pwdReset` means it must be changed; the account's
 * own expiry from `pwdEndTime` or `shadowExpire` (days since 1970).
 *
 * @example
 * ```ts
 * const { state } = openLdapAccount(entry, { pwdMaxAge: 7_776_000, pwdLockoutDuration: 600 }, Date.now());
 * ```
 */
export function openLdapAccount(entry: LdapEntry, policy: PpolicySettings, now: number): ParsedAccount {
  const lockedText = valueOf(entry, 'pwdAccountLockedTime');
  const disabled = lockedText === PPOLICY_PERMANENT_LOCK;
  const lockedAt = disabled ? undefined : parseGeneralizedTime(lockedText);
  const duration = policy.pwdLockoutDuration ?? 0;
  const lockedUntil = lockedAt !== undefined && duration > 0 ? lockedAt + duration * 1000 : undefined;
  const locked = lockedAt !== undefined && (lockedUntil === undefined || lockedUntil > now);
  const changed = parseGeneralizedTime(valueOf(entry, 'pwdChangedTime'));
  const maxAge = policy.pwdMaxAge ?? 0;
  const passwordExpiresAt = changed !== undefined && maxAge > 0 ? changed + maxAge * 1000 : undefined;
  const endTime = parseGeneralizedTime(valueOf(entry, 'pwdEndTime'));
  const shadow = valueOf(entry, 'shadowExpire');
  const shadowAt = shadow !== undefined && /^\d+$/.test(shadow) ? Number(shadow) * 86_400_000 : undefined;
  const expiresAt = [endTime, shadowAt].filter((t): t is number => t !== undefined).sort((a, b) => a - b)[0];
  return {
    state: {
      disabled,
      locked,
      lockedUntil: locked ? iso(lockedUntil) : undefined,
      expired: expiresAt !== undefined && expiresAt <= now,
      passwordChangedAt: iso(changed),
      passwordExpiresAt: iso(passwordExpiresAt),
    },
    passwordExpired:
      valuesOf(entry, 'pwdGraceUseTime').length > 0 || (passwordExpiresAt !== undefined && passwordExpiresAt <= now),
    mustChangePassword: (valueOf(entry, 'pwdReset') ?? '').toUpperCase() === 'TRUE',
  };
}

/**
 * The reason Active Directory gives in a failed bind's diagnostic message
 * (`80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 775, v4563`).
 * AD gives 532, 533, 701 and 773 only when the password was right; 775 (locked) whatever it was.
 *
 * @example
 * ```ts
 * adBindRefusal('80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 775, v4563'); // 'locked'
 * ```
 */
export function adBindRefusal(
  message: string,
): 'bad-credentials' | 'disabled' | 'locked' | 'expired' | 'password-expired' | 'must-change-password' | undefined {
  const m = /\bdata ([0-9a-f]{3,8})\b/i.exec(message);
  switch (m?.[1]?.toLowerCase()) {
    case '525':
    case '52e':
      return 'bad-credentials';
    case '530':
    case '531':
    case '533':
      return 'disabled';
    case '532':
      return 'password-expired';
    case '701':
      return 'expired';
    case '773':
      return 'must-change-password';
    case '775':
      return 'locked';
    default:
      return undefined;
  }
}
