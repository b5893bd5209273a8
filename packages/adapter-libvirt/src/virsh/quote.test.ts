import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { quoteVirshToken, virshScript } from './quote.js';

/**
 * virsh's string parser (vshCommandStringGetArg in libvirt's vsh.c), reduced to what matters
 * for quoting: tokens end at blanks, `;` and newlines outside quotes; `'...'` is literal;
 * `"..."` allows `\` escapes; `\` escapes outside quotes; `;` separates commands.
 * The same property is checked against the real virsh in test-driver.integ.test.ts.
 */
function vshParse(script: string): string[][] {
  const commands: string[][] = [[]];
  let i = 0;
  while (i < script.length) {
    const c = script[i] ?? '';
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    if (c === ';' || c === '\n') {
      commands.push([]);
      i++;
      continue;
    }
    let token = '';
    let single = false;
    let double = false;
    while (i < script.length) {
      const ch = script[i] ?? '';
      if (!single && !double && (ch === ' ' || ch === '\t' || ch === ';' || ch === '\n')) break;
      if (!double && ch === "'") {
        single = !single;
        i++;
        continue;
      }
      if (!single && ch === '\\') {
        token += script[i + 1] ?? '';
        i += 2;
        continue;
      }
      if (!single && ch === '"') {
        double = !double;
        i++;
        continue;
      }
      token += ch;
      i++;
    }
    commands[commands.length - 1]?.push(token);
  }
  return commands.filter((c) => c.length > 0);
}

describe('virsh quoting', () => {
  it('round-trips any tokens through virsh parsing rules', () => {
    const token = fc.string({ unit: 'binary', maxLength: 30 }).filter((s) => !s.includes('\0'));
    fc.assert(
      fc.property(fc.array(fc.array(token, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 4 }), (cmds) => {
        expect(vshParse(virshScript(cmds))).toEqual(cmds);
      }),
    );
  });

  it('quotes the characters that would split or chain commands', () => {
    expect(quoteVirshToken("a b;c'd")).toBe(`'a b;c'\\''d'`);
    expect(virshScript([['snapshot-create-as', '--name', 'x; destroy vm']])).toBe(
      `'snapshot-create-as' '--name' 'x; destroy vm'`,
    );
  });

  it('refuses a NUL byte', () => {
    expect(() => quoteVirshToken('a\0b')).toThrow(RangeError);
  });
});
