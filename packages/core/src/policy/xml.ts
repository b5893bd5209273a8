import { InvalidInputError } from '../errors.js';

/** An XML element: enough of XML for a site list. */
export interface XmlElement {
  readonly name: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly children: XmlElement[];
  /** The element's own text, entities decoded, children's text excluded. */
  text: string;
  /** 1-based line of the start tag. */
  readonly line: number;
}

const NAME = /[A-Za-z_:][-A-Za-z0-9_:.]*/y;
const ATTR = /\s+([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*(?:"([^"<]*)"|'([^'<]*)')/y;

function decodeEntities(text: string, fail: (m: string) => never): string {
  return text.replace(/&(#x[0-9A-Fa-f]+|#\d+|[A-Za-z]+);?/g, (m, body: string) => {
    if (!m.endsWith(';')) fail(`"${m}" is not a complete entity (missing ;)`);
    if (body.startsWith('#x')) return String.fromCodePoint(parseInt(body.slice(2), 16));
    if (body.startsWith('#')) return String.fromCodePoint(Number(body.slice(1)));
    const named: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
    const v = named[body];
    if (v === undefined) fail(`unknown entity &${body};`);
    return v;
  });
}

/**
 * Parses a small XML document into elements. Comments, processing instructions and CDATA are
 * understood; a DOCTYPE with entity declarations is refused (no entity expansion, ever).
 * Throws InvalidInputError with the line of the problem.
 */
export function parseXml(xml: string, source = '<xml>'): XmlElement {
  let pos = 0;
  // Lines are asked for in increasing positions, so count on from the last answer.
  let seenPos = 0;
  let seenLine = 1;
  const lineAt = (p: number): number => {
    if (p < seenPos) {
      seenPos = 0;
      seenLine = 1;
    }
    for (let i = seenPos; i < p && i < xml.length; i++) if (xml.charCodeAt(i) === 10) seenLine++;
    seenPos = Math.max(seenPos, Math.min(p, xml.length));
    return seenLine;
  };
  const fail = (message: string, at = pos): never => {
    const line = lineAt(at);
    throw new InvalidInputError(`${source}:${line}: not well-formed XML: ${message}.`, {
      details: { file: source, line, reason: message },
    });
  };
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  if (xml.charCodeAt(0) === 0xfeff) pos = 1;
  while (pos < xml.length) {
    const lt = xml.indexOf('<', pos);
    const textEnd = lt < 0 ? xml.length : lt;
    if (textEnd > pos) {
      const raw = xml.slice(pos, textEnd);
      const top = stack[stack.length - 1];
      if (top) top.text += decodeEntities(raw, (m) => fail(m, pos));
      else if (raw.trim() !== '') fail('text outside the root element', pos);
      pos = textEnd;
      continue;
    }
    if (xml.startsWith('<!--', pos)) {
      const end = xml.indexOf('-->', pos + 4);
      if (end < 0) fail('a comment is not closed');
      pos = end + 3;
    } else if (xml.startsWith('<?', pos)) {
      const end = xml.indexOf('?>', pos + 2);
      if (end < 0) fail('a processing instruction is not closed');
      pos = end + 2;
    } else if (xml.startsWith('<![CDATA[', pos)) {
      const end = xml.indexOf(']]>', pos + 9);
      if (end < 0) fail('a CDATA section is not closed');
      const top = stack[stack.length - 1];
      if (!top) fail('CDATA outside the root element');
      else top.text += xml.slice(pos + 9, end);
      pos = end + 3;
    } else if (xml.startsWith('<!DOCTYPE', pos) || xml.startsWith('<!doctype', pos)) {
      const end = xml.indexOf('>', pos);
      const bracket = xml.indexOf('[', pos);
      if (end < 0 || (bracket >= 0 && bracket < end)) fail('a DOCTYPE with declarations is not accepted');
      pos = end + 1;
    } else if (xml.startsWith('</', pos)) {
      NAME.lastIndex = pos + 2;
      const m = NAME.exec(xml);
      if (!m) fail('a closing tag has no name');
      const name = m?.[0] ?? '';
      const close = xml.indexOf('>', NAME.lastIndex);
      if (close < 0 || xml.slice(NAME.lastIndex, close).trim() !== '') fail(`the closing tag </${name}> is malformed`);
      const open = stack.pop();
      if (!open || open.name !== name)
        fail(`</${name}> closes ${open ? `<${open.name}> (line ${open.line})` : 'nothing'}`);
      pos = close + 1;
    } else {
      const start = pos;
      NAME.lastIndex = pos + 1;
      const m = NAME.exec(xml);
      if (!m) fail('"<" does not start a tag');
      const name = m?.[0] ?? '';
      pos = NAME.lastIndex;
      // No prototype: an attribute named `constructor` or `__proto__` is an attribute like any other.
      const attributes = Object.create(null) as Record<string, string>;
      for (;;) {
        ATTR.lastIndex = pos;
        const a = ATTR.exec(xml);
        if (!a) break;
        const key = a[1] ?? '';
        if (key in attributes) fail(`the attribute ${key} appears twice`);
        attributes[key] = decodeEntities(a[2] ?? a[3] ?? '', (msg) => fail(msg, start));
        pos = ATTR.lastIndex;
      }
      const rest = /\s*(\/?)>/y;
      rest.lastIndex = pos;
      const r = rest.exec(xml);
      if (!r) fail(`the tag <${name}> is malformed`);
      pos = rest.lastIndex;
      const el: XmlElement = { name, attributes, children: [], text: '', line: lineAt(start) };
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(el);
      else if (root) fail('a second root element');
      else root = el;
      if (r?.[1] !== '/') stack.push(el);
    }
  }
  const open = stack[stack.length - 1];
  if (open) fail(`<${open.name}> (line ${open.line}) is never closed`);
  if (!root) fail('there is no root element');
  return root as XmlElement;
}
