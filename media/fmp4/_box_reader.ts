/**
 * Bounded reading of ISO BMFF boxes: a cursor over one box's body that refuses to read past
 * it, and a walk over the boxes laid out back to back in a range.
 *
 * @module
 */

/** One box found by {@linkcode forEachBox}: its type and where its body lies. */
export interface BoxSpan {
  /** The four-character type. */
  readonly type: string;
  /** Offset of the box's first header byte. */
  readonly start: number;
  /** Offset of the first body byte (after the size, type and any 64-bit size). */
  readonly bodyStart: number;
  /** Offset just past the box. */
  readonly end: number;
}

/**
 * Calls `visit` for each box laid out in `data[start..end)`. A size of 0 runs to `end`; a
 * size of 1 takes the 64-bit size that follows.
 *
 * @throws {RangeError} when a box header is truncated or a box runs past `end`.
 */
export function forEachBox(
  data: Uint8Array,
  start: number,
  end: number,
  visit: (box: BoxSpan) => void,
): void {
  let pos = start;
  while (pos < end) {
    if (end - pos < 8) throw new RangeError(`box header truncated at byte ${pos}`);
    let size = readU32(data, pos);
    const type = String.fromCharCode(data[pos + 4], data[pos + 5], data[pos + 6], data[pos + 7]);
    let bodyStart = pos + 8;
    if (size === 1) {
      if (end - pos < 16) throw new RangeError(`64-bit box size truncated at byte ${pos}`);
      size = readU32(data, pos + 8) * 0x1_0000_0000 + readU32(data, pos + 12);
      bodyStart = pos + 16;
    } else if (size === 0) {
      size = end - pos;
    }
    if (size < bodyStart - pos || size > end - pos) {
      throw new RangeError(
        `box '${printable(type)}' of ${size} bytes at byte ${pos} overruns ${end}`,
      );
    }
    visit({ type, start: pos, bodyStart, end: pos + size });
    pos += size;
  }
}

/** The first box of `type` directly inside `data[start..end)`, if any. */
export function findChild(
  data: Uint8Array,
  start: number,
  end: number,
  type: string,
): BoxSpan | undefined {
  let found: BoxSpan | undefined;
  forEachBox(data, start, end, (box) => {
    if (found === undefined && box.type === type) found = box;
  });
  return found;
}

/** A box type safe to print: anything but letters, digits and space becomes `?`. */
export function printable(type: string): string {
  return type.replace(/[^A-Za-z0-9 ]/g, "?");
}

/**
 * Reads big-endian fields from `data[pos..end)`, throwing a `RangeError` instead of reading
 * past `end` (the end of the box being read).
 */
export class BoxCursor {
  /** The bytes read. */
  readonly data: Uint8Array;
  /** The next read offset. */
  pos: number;
  /** The offset reads may not pass. */
  readonly end: number;

  /** A cursor over `data[pos..end)`. */
  constructor(data: Uint8Array, pos: number, end: number) {
    this.data = data;
    this.pos = pos;
    this.end = end;
  }

  /** Bytes left before {@linkcode BoxCursor.end}. */
  get left(): number {
    return this.end - this.pos;
  }

  /** Moves on by `n` bytes. */
  skip(n: number): void {
    this.#need(n);
    this.pos += n;
  }

  /** An unsigned 8-bit integer. */
  u8(): number {
    this.#need(1);
    return this.data[this.pos++];
  }

  /** A big-endian unsigned 16-bit integer. */
  u16(): number {
    this.#need(2);
    const v = (this.data[this.pos] << 8) | this.data[this.pos + 1];
    this.pos += 2;
    return v;
  }

  /** A big-endian signed 16-bit integer. */
  i16(): number {
    const v = this.u16();
    return v >= 0x8000 ? v - 0x10000 : v;
  }

  /** A big-endian unsigned 32-bit integer. */
  u32(): number {
    this.#need(4);
    const v = readU32(this.data, this.pos);
    this.pos += 4;
    return v;
  }

  /** A big-endian signed 32-bit integer. */
  i32(): number {
    return this.u32() | 0;
  }

  /** A big-endian unsigned 64-bit integer; one past 2^53 is refused. */
  u64(): number {
    const high = this.u32();
    const low = this.u32();
    if (high >= 0x20_0000) throw new RangeError(`64-bit value too large at byte ${this.pos - 8}`);
    return high * 0x1_0000_0000 + low;
  }

  /** A four-character code. */
  fourcc(): string {
    this.#need(4);
    const d = this.data;
    const p = this.pos;
    this.pos += 4;
    return String.fromCharCode(d[p], d[p + 1], d[p + 2], d[p + 3]);
  }

  /** A view of the next `n` bytes (not copied). */
  bytes(n: number): Uint8Array {
    this.#need(n);
    const view = this.data.subarray(this.pos, this.pos + n);
    this.pos += n;
    return view;
  }

  #need(n: number): void {
    if (n < 0 || n > this.end - this.pos) {
      throw new RangeError(
        `box truncated: ${n} bytes wanted at byte ${this.pos}, ${this.left} left`,
      );
    }
  }
}

function readU32(data: Uint8Array, pos: number): number {
  return ((data[pos] << 24) | (data[pos + 1] << 16) | (data[pos + 2] << 8) | data[pos + 3]) >>> 0;
}
