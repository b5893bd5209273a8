/**
 * A small RFC 4180 CSV writer for the server's reports. Written here rather than taken from a
 * library: writing (not parsing) CSV is a dozen lines, and the one decision that matters for
 * admin reports, neutralising spreadsheet formulas, is ours to make.
 */

/** A cell: text, a number, a boolean, or nothing (an empty cell). */
export type CsvCell = string | number | boolean | null | undefined;

/** Options of {@link toCsv}. */
export interface CsvOptions {
  /**
   * Prefix a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return with `'`, so a
   * spreadsheet shows it as text instead of running it as a formula (OWASP's CSV injection
   * advice). Numbers are never prefixed. Default true.
   */
  readonly formulaGuard?: boolean;
}

const FORMULA_START = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]|^\s|\s$/;

/** One cell as CSV text: quoted when it holds a quote, a comma, a line break or edge spaces. */
export function csvCell(value: CsvCell, options: CsvOptions = {}): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  let text = typeof value === 'boolean' ? String(value) : value;
  if ((options.formulaGuard ?? true) && FORMULA_START.test(text)) text = `'${text}`;
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/**
 * A header line and one line per row, each ended by CRLF (RFC 4180).
 *
 * @example
 * ```ts
 * toCsv(['workspace', 'devices'], [['legacy-erp', 12], ['a "quoted", name', 1]]);
 * // 'workspace,devices\r\nlegacy-erp,12\r\n"a ""quoted"", name",1\r\n'
 * ```
 */
export function toCsv(
  header: readonly string[],
  rows: readonly (readonly CsvCell[])[],
  options: CsvOptions = {},
): string {
  const line = (cells: readonly CsvCell[]): string => cells.map((c) => csvCell(c, options)).join(',') + '\r\n';
  return line(header) + rows.map(line).join('');
}
