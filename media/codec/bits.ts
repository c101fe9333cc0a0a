/**
 * Bit-level reading of codec bitstreams (MSB first) with exp-Golomb codes.
 *
 * @module
 */

/**
 * Reads bits most-significant first from a byte array. Every read past the end
 * throws a `RangeError`, so parsers built on it cannot run away on bad input.
 *
 * @example Read an exp-Golomb code
 * ```ts
 * import { BitReader } from "./bits.ts";
 *
 * const r = new BitReader(new Uint8Array([0b0100_0000]));
 * r.readUE(); // 1
 * ```
 */
export class BitReader {
  #data: Uint8Array;
  #pos = 0;
  #end: number;

  /** Reads `data` from its first bit. */
  constructor(data: Uint8Array) {
    this.#data = data;
    this.#end = data.length * 8;
  }

  /** The number of bits not read yet. */
  get bitsLeft(): number {
    return this.#end - this.#pos;
  }

  /** The number of bits read so far. */
  get position(): number {
    return this.#pos;
  }

  /** Reads one bit. */
  readBit(): number {
    if (this.#pos >= this.#end) throw new RangeError("bitstream: read past the end");
    const bit = (this.#data[this.#pos >> 3] >> (7 - (this.#pos & 7))) & 1;
    this.#pos++;
    return bit;
  }

  /** Reads whether the next bit is set. */
  readFlag(): boolean {
    return this.readBit() === 1;
  }

  /** Reads `n` bits (0..32) as an unsigned integer. */
  readBits(n: number): number {
    if (n < 0 || n > 32) throw new RangeError(`bitstream: cannot read ${n} bits at once`);
    if (n > this.bitsLeft) throw new RangeError("bitstream: read past the end");
    let value = 0;
    while (n > 0) {
      const bitInByte = this.#pos & 7;
      const take = Math.min(8 - bitInByte, n);
      const byte = this.#data[this.#pos >> 3];
      const bits = (byte >> (8 - bitInByte - take)) & ((1 << take) - 1);
      value = value * (1 << take) + bits;
      this.#pos += take;
      n -= take;
    }
    return value;
  }

  /** Moves back `n` bits, to read them again. */
  rewind(n: number): void {
    if (n < 0 || n > this.#pos) throw new RangeError("bitstream: rewind past the start");
    this.#pos -= n;
  }

  /** Skips `n` bits. */
  skipBits(n: number): void {
    if (n < 0 || n > this.bitsLeft) throw new RangeError("bitstream: skip past the end");
    this.#pos += n;
  }

  /** Reads an unsigned exp-Golomb code, ue(v) (at most 32 leading zeros). */
  readUE(): number {
    let zeros = 0;
    while (this.readBit() === 0) {
      if (++zeros > 32) throw new RangeError("bitstream: exp-Golomb code longer than 32 bits");
    }
    if (zeros === 0) return 0;
    return 2 ** zeros - 1 + this.readBits(zeros);
  }

  /** Reads a signed exp-Golomb code, se(v). */
  readSE(): number {
    const k = this.readUE();
    return k & 1 ? (k + 1) / 2 : k === 0 ? 0 : -(k / 2);
  }
}

/**
 * Removes emulation-prevention bytes (`00 00 03` → `00 00`) from a NAL unit,
 * giving its raw byte sequence payload. Returns `nal` itself when it has none.
 *
 * @example
 * ```ts
 * import { unescapeRbsp } from "./bits.ts";
 *
 * unescapeRbsp(new Uint8Array([0, 0, 3, 1])); // Uint8Array [0, 0, 1]
 * ```
 */
export function unescapeRbsp(nal: Uint8Array): Uint8Array {
  let first = -1;
  for (let i = 2; i < nal.length; i++) {
    if (nal[i] === 3 && nal[i - 1] === 0 && nal[i - 2] === 0) {
      first = i;
      break;
    }
  }
  if (first < 0) return nal;
  const out = new Uint8Array(nal.length);
  out.set(nal.subarray(0, first));
  let n = first;
  let zeros = 0;
  for (let i = first + 1; i < nal.length; i++) {
    const b = nal[i];
    if (zeros >= 2 && b === 3) {
      zeros = 0;
      continue;
    }
    zeros = b === 0 ? zeros + 1 : 0;
    out[n++] = b;
  }
  return out.subarray(0, n);
}

/**
 * Writes bits most-significant first into a growing byte array.
 *
 * @example
 * ```ts
 * import { BitWriter } from "./bits.ts";
 *
 * const w = new BitWriter();
 * w.writeBits(2, 5);
 * w.writeUE(3);
 * w.bytes(); // Uint8Array [0b00010001, 0b00000000]
 * ```
 */
export class BitWriter {
  #buf = new Uint8Array(16);
  #pos = 0;

  /** Appends the low `n` bits (0..32) of `value`. */
  writeBits(value: number, n: number): void {
    if (n < 0 || n > 32) throw new RangeError(`bitstream: cannot write ${n} bits at once`);
    if ((this.#pos + n + 7) >> 3 > this.#buf.length) {
      const grown = new Uint8Array(this.#buf.length * 2 + (n >> 3) + 1);
      grown.set(this.#buf);
      this.#buf = grown;
    }
    for (let i = n - 1; i >= 0; i--) {
      const bit = Math.floor(value / 2 ** i) & 1;
      if (bit) this.#buf[this.#pos >> 3] |= 0x80 >> (this.#pos & 7);
      this.#pos++;
    }
  }

  /** Appends an unsigned exp-Golomb code, ue(v). */
  writeUE(value: number): void {
    const v = value + 1;
    const len = Math.floor(Math.log2(v));
    this.writeBits(0, len);
    this.writeBits(v, len + 1);
  }

  /** Appends a signed exp-Golomb code, se(v). */
  writeSE(value: number): void {
    this.writeUE(value > 0 ? 2 * value - 1 : -2 * value);
  }

  /** The bytes written so far, the last one zero-padded. */
  bytes(): Uint8Array {
    return this.#buf.slice(0, (this.#pos + 7) >> 3);
  }
}

/**
 * Inserts emulation-prevention bytes into a raw byte sequence payload so that
 * no `00 00 0x` (x ≤ 3) appears: the inverse of {@linkcode unescapeRbsp}.
 *
 * @example
 * ```ts
 * import { escapeRbsp } from "./bits.ts";
 *
 * escapeRbsp(new Uint8Array([0, 0, 1])); // Uint8Array [0, 0, 3, 1]
 * ```
 */
export function escapeRbsp(rbsp: Uint8Array): Uint8Array {
  const out: number[] = [];
  let zeros = 0;
  for (const b of rbsp) {
    if (zeros >= 2 && b <= 3) {
      out.push(3);
      zeros = 0;
    }
    out.push(b);
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return new Uint8Array(out);
}
