import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { escapeFreeRdpListValue, posixCommandLine, quoteWindowsArg, windowsCommandLine } from './quoting.js';

/** CommandLineToArgvW's documented splitting (the 2008+ CRT rules). */
function commandLineToArgv(line: string): string[] {
  const args: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (line[i] === ' ' || line[i] === '\t') i++;
    if (i >= line.length) break;
    let arg = '';
    let quoted = false;
    while (i < line.length) {
      const c = line[i];
      if (!quoted && (c === ' ' || c === '\t')) break;
      if (c === '\\') {
        let n = 0;
        while (line[i] === '\\') {
          n++;
          i++;
        }
        if (line[i] === '"') {
          arg += '\\'.repeat(Math.floor(n / 2));
          if (n % 2 === 1) {
            arg += '"';
            i++;
          }
        } else arg += '\\'.repeat(n);
        continue;
      }
      if (c === '"') {
        if (quoted && line[i + 1] === '"') {
          arg += '"';
          i += 2;
          continue;
        }
        quoted = !quoted;
        i++;
        continue;
      }
      arg += c;
      i++;
    }
    args.push(arg);
  }
  return args;
}

/** WinPR's comma-list parsing (CommandLineParseCommaSeparatedValues: escape, split, unescape). */
function winprSplit(list: string): string[] {
  const out: string[] = [];
  let cur = '';
  let escaped = false;
  let quoted = false;
  for (const c of list) {
    if (escaped) {
      cur += c;
      escaped = false;
      continue;
    }
    if (!quoted && c === '\\') {
      escaped = true;
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (!quoted && c === ',') {
      out.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  out.push(cur);
  return out;
}

const text = fc.string({ unit: 'grapheme', maxLength: 20 });
const noNul = fc.string({ unit: 'binary', maxLength: 20 }).filter((s) => !s.includes('\0'));

describe('Windows command lines', () => {
  it('split back into the same arguments (CommandLineToArgvW rules)', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(text, fc.stringMatching(/^[\\" a]{0,8}$/)), { maxLength: 6 }), (args) => {
        expect(commandLineToArgv(windowsCommandLine(args))).toEqual(args.length === 0 ? [] : args);
      }),
    );
  });

  it('leaves plain words alone and quotes the rest', () => {
    expect(quoteWindowsArg('report.erp')).toBe('report.erp');
    expect(quoteWindowsArg('C:\\Users\\Zoë\\My Files\\')).toBe('"C:\\Users\\Zoë\\My Files\\\\"');
    expect(quoteWindowsArg('say "hi"')).toBe('"say \\"hi\\""');
    expect(quoteWindowsArg('')).toBe('""');
  });
});

describe('POSIX command lines', () => {
  it('split back into the same words in a real sh and in Python shlex (Xpra)', () => {
    const samples = fc.sample(fc.array(noNul, { minLength: 1, maxLength: 5 }), { numRuns: 60, seed: 7 });
    samples.push(['/opt/Zoë App/bin/run', "it's", '"quoted"', '$(reboot)', '`id`', 'a\nb', '*', '~', '']);
    const lines = samples.map(posixCommandLine);
    const sh = lines.map((line) =>
      execFileSync('sh', ['-c', `for a in ${line}; do printf '%s\\0' "$a"; done`], { encoding: 'utf8' }),
    );
    sh.forEach((out, i) => expect(out.split('\0').slice(0, -1)).toEqual(samples[i]));
    const py = execFileSync(
      'python3',
      ['-c', 'import json,shlex,sys; print(json.dumps([shlex.split(l) for l in json.load(sys.stdin)]))'],
      {
        input: JSON.stringify(lines),
        encoding: 'utf8',
      },
    );
    expect(JSON.parse(py)).toEqual(samples);
  });
});

describe('FreeRDP 3 list values', () => {
  it('survive WinPR comma-list splitting', () => {
    fc.assert(
      fc.property(fc.array(text, { minLength: 1, maxLength: 4 }), (values) => {
        const list = values.map((v, i) => `k${i}:${escapeFreeRdpListValue(v)}`).join(',');
        expect(winprSplit(list)).toEqual(values.map((v, i) => `k${i}:${v}`));
      }),
    );
  });
});
