import { XMLParser } from 'fast-xml-parser';

/** An element of a parsed XML document, in document order. */
export interface XmlElement {
  readonly name: string;
  readonly attrs: Readonly<Record<string, string>>;
  readonly children: readonly XmlElement[];
  /** The element's own text (concatenated text nodes, entities decoded, not trimmed). */
  readonly text: string;
}

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  processEntities: true,
  // Also decodes numeric references (&#10;), which libxml2 writes for newlines in attributes.
  htmlEntities: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
});

type RawNode = Record<string, unknown> & { ':@'?: Record<string, string> };

/** Parses libvirt's XML (domain, snapshot, capabilities) into a small element tree. */
export function parseXml(xml: string): XmlElement {
  const nodes = parser.parse(xml) as RawNode[];
  const root = convert(nodes).find((e) => e.name !== '');
  if (!root) throw new Error('XML document has no root element');
  return root;
}

function convert(nodes: readonly RawNode[]): XmlElement[] {
  const out: XmlElement[] = [];
  for (const node of nodes) {
    const name = Object.keys(node).find((k) => k !== ':@');
    if (name === undefined || name === '#text' || name === '#comment' || name.startsWith('?')) continue;
    const rawChildren = (node[name] as RawNode[] | undefined) ?? [];
    const text = rawChildren
      .filter((c) => '#text' in c)
      .map((c) => String(c['#text']))
      .join('');
    out.push({ name, attrs: { ...(node[':@'] ?? {}) }, children: convert(rawChildren), text });
  }
  return out;
}

/** The first child element named `name`. */
export function child(el: XmlElement | undefined, name: string): XmlElement | undefined {
  return el?.children.find((c) => c.name === name);
}

/** All child elements named `name`. */
export function children(el: XmlElement | undefined, name: string): XmlElement[] {
  return el ? el.children.filter((c) => c.name === name) : [];
}

/** Follows a path of child names. */
export function path(el: XmlElement | undefined, ...names: string[]): XmlElement | undefined {
  let cur = el;
  for (const n of names) cur = child(cur, n);
  return cur;
}

/** Escapes text for an XML attribute value or element content. */
export function escapeXml(value: string): string {
  // XML 1.0 cannot carry most control characters at all, even escaped.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/.test(value)) {
    throw new RangeError('value contains a control character that XML cannot represent');
  }
  return value
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&apos;')
    .replaceAll('\r', '&#13;')
    .replaceAll('\n', '&#10;')
    .replaceAll('\t', '&#9;');
}
