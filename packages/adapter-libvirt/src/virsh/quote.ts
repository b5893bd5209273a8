/**
 * Quoting for virsh's own command language. virsh parses a single command-line argument as a
 * script ("cmd1 args ; cmd2 args"), which lets one virsh process (one connection) run several
 * commands. Every token is single-quoted; a single quote inside becomes `'\''`, exactly as in a
 * POSIX shell, which is the rule virsh's parser follows (vshCommandStringGetArg). No system
 * shell is ever involved: the script reaches virsh as one element of an argument array.
 */

/** Quotes one token so virsh's parser yields exactly `value`. */
export function quoteVirshToken(value: string): string {
  if (value.includes('\0')) throw new RangeError('virsh arguments cannot contain a NUL byte');
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** Joins commands (each an array of tokens) into one virsh script. */
export function virshScript(commands: readonly (readonly string[])[]): string {
  return commands.map((tokens) => tokens.map(quoteVirshToken).join(' ')).join(' ; ');
}
