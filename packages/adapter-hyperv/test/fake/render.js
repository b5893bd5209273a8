'use strict';
// ConvertTo-Json as Windows PowerShell 5.1 and PowerShell 7 format it.
// Dates are passed as { $date: <ms since epoch> }.

const isDate = (v) => v !== null && typeof v === 'object' && typeof v.$date === 'number';

/** JavaScriptSerializer (5.1) escaping: also <, >, & and ' as \u00XX. */
function str51(s) {
  return `"${String(s).replace(/[\u0000-\u001f"\\<>&']/g, (c) => {
    switch (c) {
      case '"':
        return '\\"';
      case '\\':
        return '\\\\';
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      case '\t':
        return '\\t';
      case '\b':
        return '\\b';
      case '\f':
        return '\\f';
      default:
        return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
    }
  })}"`;
}

/**
 * 5.1 pretty-printing: 4-space steps, `"key":  value` (two spaces), and nested objects and
 * arrays indented from the column where their value starts; an empty array spans an empty line.
 */
function ps51(value, column = 0) {
  const pad = (n) => ' '.repeat(n);
  if (value === null || value === undefined) return 'null';
  if (isDate(value)) return `"\\/Date(${value.$date})\\/"`;
  if (typeof value === 'string') return str51(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) {
    if (value.length === 0) return `[\r\n\r\n${pad(column)}]`;
    return `[\r\n${value.map((v) => pad(column + 4) + ps51(v, column + 4)).join(',\r\n')}\r\n${pad(column)}]`;
  }
  const entries = Object.entries(value);
  if (entries.length === 0) return '{\r\n\r\n' + pad(column) + '}';
  const lines = entries.map(([k, v]) => {
    const head = `${pad(column + 4)}${str51(k)}:  `;
    return head + ps51(v, head.length);
  });
  return `{\r\n${lines.join(',\r\n')}\r\n${pad(column)}}`;
}

/** 5.1 -Compress. */
function ps51Compress(value) {
  if (value === null || value === undefined) return 'null';
  if (isDate(value)) return `"\\/Date(${value.$date})\\/"`;
  if (typeof value === 'string') return str51(value);
  if (typeof value !== 'object') return String(value);
  if (Array.isArray(value)) return `[${value.map(ps51Compress).join(',')}]`;
  return `{${Object.entries(value)
    .map(([k, v]) => `${str51(k)}:${ps51Compress(v)}`)
    .join(',')}}`;
}

/** PowerShell 7 (Newtonsoft.Json, indented): 2-space steps; dates in round-trip format. */
function ps7(value, compress = false) {
  const replaced = JSON.parse(
    JSON.stringify(value, (_k, v) =>
      isDate(v) ? new Date(v.$date).toISOString().replace(/\.(\d{3})Z$/, '.$10000+00:00') : v,
    ),
  );
  return compress ? JSON.stringify(replaced) : JSON.stringify(replaced, null, 2).replace(/\n/g, '\r\n');
}

function render(flavor, value) {
  return flavor === '5.1' ? ps51(value) : ps7(value);
}

function renderCompress(flavor, value) {
  return flavor === '5.1' ? ps51Compress(value) : ps7(value, true);
}

/** A TimeSpan as ConvertTo-Json prints it. */
function timeSpan(ms) {
  const ticks = ms * 10000;
  return {
    Ticks: ticks,
    Days: Math.floor(ms / 86400000),
    Hours: Math.floor(ms / 3600000) % 24,
    Milliseconds: ms % 1000,
    Minutes: Math.floor(ms / 60000) % 60,
    Seconds: Math.floor(ms / 1000) % 60,
    TotalDays: ms / 86400000,
    TotalHours: ms / 3600000,
    TotalMilliseconds: ms,
    TotalMinutes: ms / 60000,
    TotalSeconds: ms / 1000,
  };
}

module.exports = { ps51, ps7, render, renderCompress, timeSpan };
