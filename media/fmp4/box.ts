/**
 * A writer of ISO BMFF (MP4) boxes into a caller-provided buffer.
 *
 * @module
 */

/**
 * Writes ISO BMFF boxes into a preallocated buffer: {@linkcode BoxWriter.begin}
 * reserves a box header, {@linkcode BoxWriter.end} patches its size. Nothing is
 * allocated while writing; writing past the end of the buffer throws a
 * `RangeError`.
 *
 * @example Write a `free` box holding two bytes
 * ```ts
 * import { BoxWriter } from "@arcly/stream/fmp4";
 *
 * const w = new BoxWriter(new Uint8Array(16));
 * const start = w.begin("free");
 * w.u8(1);
 * w.u8(2);
 * w.end(start);
 * const bytes = w.bytes.subarray(0, w.pos); // 00 00 00 0a 66 72 65 65 01 02
 * ```
 */
export class BoxWriter {
  /** The buffer being written. */
  readonly bytes: Uint8Array;
  /** The next write offset in {@linkcode BoxWriter.bytes}. */
  pos: number;
  #view: DataView;

  /**
   * Makes a writer over `bytes`.
   *
   * @param bytes the buffer to write into
   * @param pos the offset of the first write
   */
  constructor(bytes: Uint8Array, pos = 0) {
    this.bytes = bytes;
    this.pos = pos;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Starts a box of `type` (four ASCII characters); returns its start for {@linkcode BoxWriter.end}. */
  begin(type: string): number {
    const start = this.pos;
    this.u32(0);
    this.fourcc(type);
    return start;
  }

  /** Starts a full box (a box with a version byte and 24 bits of flags). */
  beginFull(type: string, version: number, flags: number): number {
    const start = this.begin(type);
    this.u8(version);
    this.u24(flags);
    return start;
  }

  /** Ends the box started at `start` by writing its size. */
  end(start: number): void {
    this.#view.setUint32(start, this.pos - start);
  }

  /** Writes an unsigned 8-bit integer. */
  u8(value: number): void {
    this.#view.setUint8(this.pos, value);
    this.pos += 1;
  }

  /** Writes a big-endian unsigned 16-bit integer. */
  u16(value: number): void {
    this.#view.setUint16(this.pos, value);
    this.pos += 2;
  }

  /** Writes a big-endian signed 16-bit integer. */
  i16(value: number): void {
    this.#view.setInt16(this.pos, value);
    this.pos += 2;
  }

  /** Writes a big-endian unsigned 24-bit integer. */
  u24(value: number): void {
    this.#view.setUint8(this.pos, value >>> 16);
    this.#view.setUint16(this.pos + 1, value & 0xffff);
    this.pos += 3;
  }

  /** Writes a big-endian unsigned 32-bit integer. */
  u32(value: number): void {
    this.#view.setUint32(this.pos, value);
    this.pos += 4;
  }

  /** Writes a big-endian signed 32-bit integer. */
  i32(value: number): void {
    this.#view.setInt32(this.pos, value);
    this.pos += 4;
  }

  /** Writes a big-endian unsigned 64-bit integer (a non-negative safe integer). */
  u64(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`u64 value out of range: ${value}`);
    }
    this.#view.setUint32(this.pos, Math.floor(value / 0x1_0000_0000));
    this.#view.setUint32(this.pos + 4, value >>> 0);
    this.pos += 8;
  }

  /** Writes a four-character code. */
  fourcc(code: string): void {
    if (code.length !== 4) throw new RangeError(`not a four-character code: ${code}`);
    for (let i = 0; i < 4; i++) this.u8(code.charCodeAt(i));
  }

  /** Copies `data` into the buffer. */
  write(data: Uint8Array): void {
    this.bytes.set(data, this.pos);
    this.pos += data.byteLength;
  }

  /** Writes `count` zero bytes. */
  zeros(count: number): void {
    if (this.pos + count > this.bytes.byteLength) {
      throw new RangeError("write past the end of the buffer");
    }
    this.bytes.fill(0, this.pos, this.pos + count);
    this.pos += count;
  }
}
