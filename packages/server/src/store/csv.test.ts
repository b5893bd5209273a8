import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { csvCell, toCsv } from './csv.js';
import { endpointReportCsv, eventsCsv, failuresCsv, versionDistributionCsv } from './reports.js';
import { sampleEvent } from './conformance.js';

/** An RFC 4180 reader, written independently of the writer, to read back what it wrote. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(cell);
      cell = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += ch;
  }
  expect(cell, 'the text ends with CRLF').toBe('');
  return rows;
}

describe('CSV writer', () => {
  it('reads back exactly what it wrote, for any text (formula guard off)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.string({ unit: 'binary' }), { minLength: 1, maxLength: 5 }), { maxLength: 5 }),
        (rows) => {
          const width = Math.max(1, ...rows.map((r) => r.length));
          const padded = rows.map((r) => [...r, ...Array<string>(width - r.length).fill('')]);
          const header = Array.from({ length: width }, (_, i) => `c${i}`);
          expect(parseCsv(toCsv(header, padded, { formulaGuard: false }))).toEqual([header, ...padded]);
        },
      ),
    );
  });

  it('quotes only what needs it, and neutralises formulas', () => {
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('two\nlines')).toBe('"two\nlines"');
    expect(csvCell(' edge ')).toBe('" edge "');
    expect(csvCell('=HYPERLINK("http://x")')).toBe(`"'=HYPERLINK(""http://x"")"`);
    expect(csvCell('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvCell('-2+3')).toBe("'-2+3");
    expect(csvCell(-2)).toBe('-2');
    expect(csvCell(null)).toBe('');
    expect(csvCell(undefined)).toBe('');
    expect(csvCell(true)).toBe('true');
    expect(csvCell(Number.NaN)).toBe('');
  });

  it('writes the reports: a line per device and workspace, counts, events with their data as JSON', () => {
    const endpoints = endpointReportCsv([
      {
        device: 'd1',
        user: 'alice',
        hostName: 'pc-1',
        lastCheckInAt: '2026-05-01T00:00:00.000Z',
        revoked: false,
        workspaces: [
          { workspace: 'erp', version: '1.0', state: 'running' },
          { workspace: 'cad', version: null, state: null },
        ],
      },
      { device: 'd2', user: 'bob, jr', hostName: 'pc-2', lastCheckInAt: null, revoked: true, workspaces: [] },
    ]);
    expect(parseCsv(endpoints)).toEqual([
      ['device', 'user', 'hostName', 'lastCheckInAt', 'revoked', 'workspace', 'version', 'state'],
      ['d1', 'alice', 'pc-1', '2026-05-01T00:00:00.000Z', 'false', 'erp', '1.0', 'running'],
      ['d1', 'alice', 'pc-1', '2026-05-01T00:00:00.000Z', 'false', 'cad', '', ''],
      ['d2', 'bob, jr', 'pc-2', '', 'true', '', '', ''],
    ]);
    expect(failuresCsv([{ type: 'session.error', count: 3 }])).toBe('type,count\r\nsession.error,3\r\n');
    expect(versionDistributionCsv([{ workspace: 'erp', version: '1.0', devices: 2 }])).toBe(
      'workspace,version,devices\r\nerp,1.0,2\r\n',
    );
    const e = sampleEvent('2026-05-01T00:00:00.000Z', { type: 'session.error', id: 'e1' });
    const rows = parseCsv(eventsCsv({ events: [e] }));
    expect(rows[1]!.slice(0, 4)).toEqual(['e1', '2026-05-01T00:00:00.000Z', 'session.error', 'tandem-device1:dev0001']);
    expect(JSON.parse(rows[1]![8]!)).toEqual(e.event.data);
  });
});
