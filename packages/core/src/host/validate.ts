import { InvalidInputError } from '../errors.js';
import type { CommandRequest } from './types.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Checks that a value can reach a program as one argument: no NUL byte (no operating system
 * can pass one, and no hypervisor accepts one in a name) and well-formed Unicode (a lone
 * surrogate has no UTF-8 encoding). Throws InvalidInputError naming `what` otherwise.
 *
 * @example
 * ```ts
 * assertArgument(vmName, 'VM name'); // throws for "a\u0000b"
 * ```
 */
export function assertArgument(value: string, what: string): void {
  if (typeof value !== 'string') {
    throw new InvalidInputError(`The ${what} must be a string, got ${typeof value}.`, { details: { what } });
  }
  const nul = value.indexOf('\u0000');
  if (nul !== -1) {
    throw new InvalidInputError(
      `The ${what} contains a NUL byte (at index ${nul}); no hypervisor accepts one. Remove it.`,
      { details: { what, index: nul } },
    );
  }
  if (LONE_SURROGATE.test(value)) {
    throw new InvalidInputError(
      `The ${what} is not well-formed Unicode (it has a lone surrogate); it cannot be passed to a program. Fix the string.`,
      { details: { what } },
    );
  }
}

/** Checks a whole request: program, arguments and environment. */
export function assertRequest(request: CommandRequest): void {
  assertArgument(request.command, 'program path');
  if (request.command.length === 0) {
    throw new InvalidInputError('The program path is empty; give the program to run.', {
      details: { what: 'program path' },
    });
  }
  (request.args ?? []).forEach((arg, i) => assertArgument(arg, `argument ${i + 1} of ${request.command}`));
  for (const [name, value] of Object.entries(request.env ?? {})) {
    if (!ENV_NAME.test(name)) {
      throw new InvalidInputError(
        `Environment variable name "${name}" is not valid: expected letters, digits and _ (not starting with a digit).`,
        { details: { what: 'environment variable name', name } },
      );
    }
    assertArgument(value, `value of environment variable ${name}`);
  }
}
