/**
 * NAL unit framing shared by H.264 and H.265: Annex-B start codes and
 * 4-byte length prefixes (the kernel's payload form).
 *
 * @module
 */

/**
 * Splits a length-prefixed access unit (4-byte big-endian lengths) into NAL
 * units. The returned arrays are views into `au`.
 *
 * @throws {RangeError} when a length runs past the end of `au`.
 * @example
 * ```ts
 * import { splitLengthPrefixed } from "./nal.ts";
 *
 * const nals = splitLengthPrefixed(new Uint8Array([0, 0, 0, 2, 0x65, 0x88]));
 * nals.length; // 1
 * ```
 */
export function splitLengthPrefixed(au: Uint8Array): Uint8Array[] {
  const nals: Uint8Array[] = [];
  let pos = 0;
  while (pos < au.length) {
    if (pos + 4 > au.length) {
      throw new RangeError(`NAL length prefix truncated at byte ${pos} of ${au.length}`);
    }
    const len = ((au[pos] << 24) | (au[pos + 1] << 16) | (au[pos + 2] << 8) | au[pos + 3]) >>> 0;
    pos += 4;
    if (len > au.length - pos) {
      throw new RangeError(`NAL unit of ${len} bytes overruns the access unit at byte ${pos}`);
    }
    nals.push(au.subarray(pos, pos + len));
    pos += len;
  }
  return nals;
}

/**
 * Splits Annex-B data (3- or 4-byte start codes) into NAL units, without the
 * start codes and without trailing zero bytes. Bytes before the first start
 * code are ignored. The returned arrays are views into `data`.
 *
 * @example
 * ```ts
 * import { splitAnnexB } from "./nal.ts";
 *
 * const nals = splitAnnexB(new Uint8Array([0, 0, 0, 1, 0x67, 0x42, 0, 0, 1, 0x68, 0xce]));
 * nals.length; // 2
 * ```
 */
export function splitAnnexB(data: Uint8Array): Uint8Array[] {
  const nals: Uint8Array[] = [];
  let start = -1;
  let i = 0;
  const n = data.length;
  while (i + 2 < n) {
    if (data[i + 2] > 1) {
      i += 3;
    } else if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
      if (start >= 0) pushTrimmed(nals, data, start, i);
      i += 3;
      start = i;
    } else {
      i++;
    }
  }
  if (start >= 0) pushTrimmed(nals, data, start, n);
  return nals;
}

function pushTrimmed(nals: Uint8Array[], data: Uint8Array, start: number, end: number): void {
  while (end > start && data[end - 1] === 0) end--;
  if (end > start) nals.push(data.subarray(start, end));
}

/**
 * Converts Annex-B data into a new length-prefixed access unit (4-byte lengths).
 *
 * @example
 * ```ts
 * import { annexBToLengthPrefixed } from "./nal.ts";
 *
 * annexBToLengthPrefixed(new Uint8Array([0, 0, 1, 0x65, 0x88]));
 * // Uint8Array [0, 0, 0, 2, 0x65, 0x88]
 * ```
 */
export function annexBToLengthPrefixed(data: Uint8Array): Uint8Array {
  return lengthPrefixedFromNalUnits(splitAnnexB(data));
}

/**
 * Copies a length-prefixed access unit into `out` at `offset`, replacing each
 * 4-byte length with the start code `00 00 00 01` (same size). `au` is never
 * modified. Returns the number of bytes written (`au.length`).
 *
 * @throws {RangeError} when `out` is too small or a length overruns `au`.
 * @example
 * ```ts
 * import { writeAnnexB } from "./nal.ts";
 *
 * const out = new Uint8Array(6);
 * writeAnnexB(new Uint8Array([0, 0, 0, 2, 0x65, 0x88]), out, 0); // 6
 * // out: [0, 0, 0, 1, 0x65, 0x88]
 * ```
 */
export function writeAnnexB(au: Uint8Array, out: Uint8Array, offset: number): number {
  if (offset < 0 || offset + au.length > out.length) {
    throw new RangeError(`writeAnnexB: ${au.length} bytes do not fit at offset ${offset}`);
  }
  let pos = 0;
  while (pos < au.length) {
    if (pos + 4 > au.length) {
      throw new RangeError(`NAL length prefix truncated at byte ${pos} of ${au.length}`);
    }
    const len = ((au[pos] << 24) | (au[pos + 1] << 16) | (au[pos + 2] << 8) | au[pos + 3]) >>> 0;
    if (len > au.length - pos - 4) {
      throw new RangeError(`NAL unit of ${len} bytes overruns the access unit at byte ${pos + 4}`);
    }
    const o = offset + pos;
    out[o] = 0;
    out[o + 1] = 0;
    out[o + 2] = 0;
    out[o + 3] = 1;
    out.set(au.subarray(pos + 4, pos + 4 + len), o + 4);
    pos += 4 + len;
  }
  return au.length;
}

/**
 * Joins NAL units into one new length-prefixed access unit (4-byte lengths).
 *
 * @example
 * ```ts
 * import { lengthPrefixedFromNalUnits } from "./nal.ts";
 *
 * lengthPrefixedFromNalUnits([new Uint8Array([0x09, 0xf0])]); // Uint8Array [0, 0, 0, 2, 9, 0xf0]
 * ```
 */
export function lengthPrefixedFromNalUnits(nals: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const nal of nals) size += 4 + nal.length;
  const out = new Uint8Array(size);
  let pos = 0;
  for (const nal of nals) {
    const len = nal.length;
    out[pos] = len >>> 24;
    out[pos + 1] = (len >>> 16) & 0xff;
    out[pos + 2] = (len >>> 8) & 0xff;
    out[pos + 3] = len & 0xff;
    out.set(nal, pos + 4);
    pos += 4 + len;
  }
  return out;
}

/**
 * Rewrites NAL units framed with `lengthSize`-byte lengths (1, 2, 3 or 4, as
 * `lengthSizeMinusOne + 1` in a decoder configuration record) into the
 * kernel's 4-byte form. Returns `data` itself (after checking its lengths)
 * when `lengthSize` is 4.
 *
 * @throws {RangeError} when a length runs past the end or `lengthSize` is invalid.
 * @example
 * ```ts
 * import { toFourByteLengths } from "./nal.ts";
 *
 * toFourByteLengths(new Uint8Array([0, 2, 0x65, 0x88]), 2); // Uint8Array [0, 0, 0, 2, 0x65, 0x88]
 * ```
 */
export function toFourByteLengths(data: Uint8Array, lengthSize: number): Uint8Array {
  if (lengthSize === 4) {
    for (let pos = 0; pos < data.length;) pos += 4 + readLength(data, pos, 4);
    return data;
  }
  if (lengthSize !== 1 && lengthSize !== 2 && lengthSize !== 3) {
    throw new RangeError(`NAL length size must be 1, 2, 3 or 4, not ${lengthSize}`);
  }
  let count = 0;
  let pos = 0;
  while (pos < data.length) {
    pos += lengthSize + readLength(data, pos, lengthSize);
    count++;
  }
  const out = new Uint8Array(data.length + count * (4 - lengthSize));
  pos = 0;
  let o = 0;
  while (pos < data.length) {
    const len = readLength(data, pos, lengthSize);
    out[o] = len >>> 24;
    out[o + 1] = (len >>> 16) & 0xff;
    out[o + 2] = (len >>> 8) & 0xff;
    out[o + 3] = len & 0xff;
    out.set(data.subarray(pos + lengthSize, pos + lengthSize + len), o + 4);
    pos += lengthSize + len;
    o += 4 + len;
  }
  return out;
}

function readLength(data: Uint8Array, pos: number, size: number): number {
  if (pos + size > data.length) {
    throw new RangeError(`NAL length prefix truncated at byte ${pos} of ${data.length}`);
  }
  let len = 0;
  for (let i = 0; i < size; i++) len = len * 256 + data[pos + i];
  if (len > data.length - pos - size) {
    throw new RangeError(`NAL unit of ${len} bytes overruns the access unit at byte ${pos + size}`);
  }
  return len;
}

/**
 * Whether a length-prefixed access unit has a NAL unit whose first header byte
 * passes `test`. Walks the lengths without allocating; stops (returning
 * `false` for the rest) at a malformed length instead of throwing.
 *
 * @example Find an H.264 IDR slice
 * ```ts
 * import { hasNalUnit } from "./nal.ts";
 *
 * hasNalUnit(new Uint8Array([0, 0, 0, 1, 0x65]), (b) => (b & 0x1f) === 5); // true
 * ```
 */
export function hasNalUnit(au: Uint8Array, test: (header: number) => boolean): boolean {
  let pos = 0;
  while (pos + 4 < au.length) {
    const len = ((au[pos] << 24) | (au[pos + 1] << 16) | (au[pos + 2] << 8) | au[pos + 3]) >>> 0;
    pos += 4;
    if (len === 0) continue;
    if (len > au.length - pos) return false;
    if (test(au[pos])) return true;
    pos += len;
  }
  return false;
}
