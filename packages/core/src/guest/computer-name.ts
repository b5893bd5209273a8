import { randomInt } from 'node:crypto';
import { InvalidInputError } from '../errors.js';

/** Windows limits NetBIOS computer names to this many characters. */
export const NETBIOS_MAX = 15;
/** A DNS label (a Linux hostname's first part) holds at most this many characters. */
export const HOSTNAME_MAX = 63;

const PLACEHOLDERS = {
  hostName: { max: HOSTNAME_MAX, text: "the host's short name" },
  userName: { max: 64, text: "the user's name" },
  serial: { max: 64, text: "the host's serial number" },
  random4: { max: 4, text: 'four random letters and digits' },
  random6: { max: 6, text: 'six random letters and digits' },
} as const;

/** A placeholder a computer-name template may use. */
export type ComputerNamePlaceholder = keyof typeof PLACEHOLDERS;

/** What the template is rendered with. */
export interface ComputerNameVariables {
  readonly hostName?: string;
  readonly userName?: string;
  readonly serial?: string;
  /** Random characters; default: crypto.randomInt over [A-Z0-9]. */
  readonly random?: (length: number) => string;
}

/** What {@link checkComputerNameTemplate} found. */
export interface ComputerNameCheck {
  /** The template cannot work: an unknown placeholder, a bad character, too long for certain. */
  readonly errors: string[];
  /** The template may not work, depending on the host (a long host name on Windows). */
  readonly warnings: string[];
  /** The fewest and the most characters a name from this template can have. */
  readonly minLength: number;
  readonly maxLength: number;
}

const TOKEN = /\{([^{}]*)\}/g;
const LITERAL_OK = /^[A-Za-z0-9-]*$/;

/**
 * Checks a computer-name template at validate time. For a Windows guest a name longer than
 * 15 characters (NetBIOS) is an error when every name would be, and a warning when it depends
 * on the host; Tandem never shortens a name silently: setup fails with the reason instead.
 *
 * @example
 * ```ts
 * checkComputerNameTemplate('ERP-{hostName}-{random4}', 'windows').warnings;
 * // [ 'on Windows a computer name holds at most 15 characters; ERP-{hostName}-{random4} gives 9 + the length of the host's short name ...' ]
 * ```
 */
export function checkComputerNameTemplate(
  template: string,
  osFamily: 'windows' | 'linux' | 'other',
): ComputerNameCheck {
  const errors: string[] = [];
  const warnings: string[] = [];
  let fixed = 0;
  let variableMax = 0;
  const variable: string[] = [];
  let last = 0;
  for (const m of template.matchAll(TOKEN)) {
    const literal = template.slice(last, m.index);
    fixed += literal.length;
    if (!LITERAL_OK.test(literal)) errors.push(`"${literal}" holds characters other than letters, digits and dashes`);
    last = m.index + m[0].length;
    const name = m[1] ?? '';
    if (!Object.hasOwn(PLACEHOLDERS, name)) {
      errors.push(
        `unknown placeholder {${name}}; expected one of ${Object.keys(PLACEHOLDERS)
          .map((p) => `{${p}}`)
          .join(', ')}`,
      );
      continue;
    }
    const spec = PLACEHOLDERS[name as ComputerNamePlaceholder];
    if (name.startsWith('random')) fixed += spec.max;
    else {
      variableMax += spec.max;
      variable.push(spec.text);
    }
  }
  const tail = template.slice(last);
  fixed += tail.length;
  if (!LITERAL_OK.test(tail)) errors.push(`"${tail}" holds characters other than letters, digits and dashes`);
  const limit = osFamily === 'windows' ? NETBIOS_MAX : HOSTNAME_MAX;
  const what = osFamily === 'windows' ? 'on Windows a computer name (NetBIOS) holds' : 'a host name holds';
  if (fixed > limit) {
    errors.push(`${what} at most ${limit} characters; ${template} always gives at least ${fixed}`);
  } else if (osFamily === 'windows' && fixed + variableMax > limit) {
    warnings.push(
      `${what} at most ${limit} characters; ${template} gives ${fixed} + the length of ${variable.join(' and ')}, so setup fails on a host where that is longer than ${limit - fixed} (the name is never shortened)`,
    );
  }
  if (fixed === 0 && variable.length === 0) errors.push('the template gives an empty name');
  return { errors, warnings, minLength: fixed, maxLength: fixed + variableMax };
}

/**
 * Renders a computer-name template. Throws InvalidInputError when the result is not a valid
 * name or is too long for the guest OS: it is never shortened.
 *
 * @example
 * ```ts
 * renderComputerName('ERP-{random4}', { random: () => 'K7Q2' }, 'windows'); // 'ERP-K7Q2'
 * ```
 */
export function renderComputerName(
  template: string,
  vars: ComputerNameVariables,
  osFamily: 'windows' | 'linux' | 'other',
): string {
  const check = checkComputerNameTemplate(template, osFamily);
  if (check.errors.length > 0) {
    throw new InvalidInputError(`The computer-name template "${template}" cannot work: ${check.errors.join('; ')}.`, {
      details: { path: 'spec.firstTimeSetup.computerName', template, errors: check.errors },
    });
  }
  const random = vars.random ?? randomChars;
  const name = template.replace(TOKEN, (_all, key: string) => {
    switch (key as ComputerNamePlaceholder) {
      case 'random4':
        return random(4);
      case 'random6':
        return random(6);
      case 'hostName':
        return required('hostName', vars.hostName?.split('.')[0], template);
      case 'userName':
        return required('userName', vars.userName, template);
      case 'serial':
        return required('serial', vars.serial, template);
    }
    return '';
  });
  const limit = osFamily === 'windows' ? NETBIOS_MAX : HOSTNAME_MAX;
  if (!/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$/.test(name)) {
    throw new InvalidInputError(
      `The computer name "${name}" made from "${template}" is not valid: use letters, digits and dashes, not at either end. Change spec.firstTimeSetup.computerName.`,
      { details: { path: 'spec.firstTimeSetup.computerName', template, name } },
    );
  }
  if (name.length > limit) {
    throw new InvalidInputError(
      `The computer name "${name}" made from "${template}" has ${name.length} characters; ${osFamily === 'windows' ? 'Windows (NetBIOS) allows' : 'a host name allows'} at most ${limit}. Tandem does not shorten it: change spec.firstTimeSetup.computerName.`,
      { details: { path: 'spec.firstTimeSetup.computerName', template, name, limit } },
    );
  }
  return name;
}

function required(key: string, value: string | undefined, template: string): string {
  if (value === undefined || value === '') {
    throw new InvalidInputError(`The computer-name template "${template}" uses {${key}}, which is not known here.`, {
      details: { path: 'spec.firstTimeSetup.computerName', template, missing: key },
    });
  }
  return value;
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

function randomChars(length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += ALPHABET[randomInt(ALPHABET.length)];
  return s;
}
