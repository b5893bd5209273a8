import { createHash } from 'node:crypto';

/**
 * Names that reach the host's file system or a launcher's text come from a workspace file or,
 * for discovered apps, from the guest: untrusted. These functions turn any string into something
 * that can only mean itself.
 */

const SAFE_SEGMENT = /^[a-z0-9][a-z0-9-]{0,47}$/;

/**
 * A file-name segment for `value`: the value itself when it is a short lower-case name of
 * letters, digits and dashes; otherwise a readable slug plus a hash of the whole value, so two
 * different values never share a segment and no value can name `.`, `..`, a path or a hidden
 * file.
 *
 * @example
 * ```ts
 * safeSegment('erp'); // 'erp'
 * safeSegment('../../.bashrc'); // 'bashrc-<12 hex digits>'
 * ```
 */
export function safeSegment(value: string): string {
  if (SAFE_SEGMENT.test(value)) return value;
  const slug = value
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 32)
    .replace(/-+$/, '');
  const hash = createHash('sha256').update(value, 'utf8').digest('hex').slice(0, 12);
  return `${slug || 'x'}-${hash}`;
}

/**
 * Text for one line of a launcher (a name, a comment): control characters (line breaks, NUL,
 * tabs) become spaces, runs of spaces collapse, and the result is at most `max` characters.
 * An empty result becomes `fallback`.
 *
 * @example
 * ```ts
 * displayText('Legacy\nERP', 'erp'); // 'Legacy ERP'
 * ```
 */
export function displayText(value: string, fallback: string, max = 200): string {
  const text = [
    ...value
      // eslint-disable-next-line no-control-regex -- control characters are exactly what is removed
      .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ')
      .replace(/\s+/g, ' ')
      .trim(),
  ]
    .slice(0, max)
    .join('')
    .trim();
  // The fallback is often untrusted too (an app's id standing in for its name).
  return text === '' && fallback !== '' ? displayText(fallback, '', max) : text;
}
