import { InvalidInputError } from '../errors.js';

/** An app's icon as bytes: PNG or SVG (from the workspace package, or from the guest agent). */
export interface LauncherIcon {
  readonly bytes: Uint8Array;
}

/** Where an icon goes in the hicolor theme, and its file extension. */
export interface IconPlacement {
  /** The theme directory under `icons/hicolor/`: `48x48/apps` or `scalable/apps`. */
  readonly directory: string;
  readonly extension: 'png' | 'svg';
  readonly size: number | null;
}

const SIZES = [16, 22, 24, 32, 48, 64, 96, 128, 192, 256, 512];
const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const MAX_ICON_BYTES = 4 * 1024 * 1024;

/**
 * Checks an untrusted icon and says where it belongs: a PNG by its IHDR size (the smallest
 * standard hicolor size that holds it), an SVG under `scalable`. Anything else is refused, so
 * the guest cannot have an arbitrary file installed under the icon's name.
 *
 * @example
 * ```ts
 * placeIcon({ bytes: png40x40 }, 'app erp'); // { directory: '48x48/apps', extension: 'png', size: 48 }
 * ```
 */
export function placeIcon(icon: LauncherIcon, what: string): IconPlacement {
  const b = icon.bytes;
  if (b.length > MAX_ICON_BYTES) {
    throw new InvalidInputError(`The icon of ${what} is ${b.length} bytes; at most ${MAX_ICON_BYTES} are accepted.`, {
      details: { bytes: b.length },
    });
  }
  if (b.length >= 24 && PNG_MAGIC.every((v, i) => b[i] === v)) {
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const type = String.fromCharCode(b[12]!, b[13]!, b[14]!, b[15]!);
    const width = view.getUint32(16);
    const height = view.getUint32(20);
    if (type !== 'IHDR' || width === 0 || height === 0) {
      throw new InvalidInputError(`The icon of ${what} is not a valid PNG (no IHDR header).`);
    }
    const side = Math.max(width, height);
    const size = SIZES.find((s) => s >= side) ?? 512;
    return { directory: `${size}x${size}/apps`, extension: 'png', size };
  }
  const head = new TextDecoder('utf-8', { fatal: false }).decode(b.subarray(0, 4096));
  if (/^\s*(<\?xml[^>]*>\s*)?(<!--[\s\S]*?-->\s*)*(<!DOCTYPE[^>]*>\s*)?<svg[\s>]/.test(head)) {
    return { directory: 'scalable/apps', extension: 'svg', size: null };
  }
  throw new InvalidInputError(`The icon of ${what} is neither a PNG nor an SVG; it is not installed.`);
}

/**
 * An .ico file holding one PNG (Windows Vista and later read PNG-compressed icons), for the
 * Windows shortcuts' IconLocation.
 */
export function pngToIco(png: Uint8Array): Uint8Array {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const w = view.getUint32(16);
  const h = view.getUint32(20);
  const out = new Uint8Array(6 + 16 + png.length);
  const o = new DataView(out.buffer);
  o.setUint16(0, 0, true);
  o.setUint16(2, 1, true); // type: icon
  o.setUint16(4, 1, true); // one image
  o.setUint8(6, w >= 256 ? 0 : w);
  o.setUint8(7, h >= 256 ? 0 : h);
  o.setUint8(8, 0);
  o.setUint8(9, 0);
  o.setUint16(10, 1, true); // colour planes
  o.setUint16(12, 32, true); // bits per pixel
  o.setUint32(14, png.length, true);
  o.setUint32(18, 22, true);
  out.set(png, 22);
  return out;
}
