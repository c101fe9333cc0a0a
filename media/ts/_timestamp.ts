/** 33-bit PES/PCR timestamps: encoding, wrapping on egress, unwrapping on ingest. */

/** 2^33: PTS, DTS and the PCR base count modulo this. */
export const WRAP_33 = 8589934592;

/** `t` reduced into 0..2^33-1 (negative values wrap from the top). */
export function wrap33(t: number): number {
  const r = t % WRAP_33;
  return r < 0 ? r + WRAP_33 : r;
}

/** Writes a 5-byte PTS/DTS field with the 4-bit `prefix` at `out[pos]`; `t` is already wrapped. */
export function writeTimestamp(out: Uint8Array, pos: number, prefix: number, t: number): void {
  out[pos] = (prefix << 4) | ((Math.floor(t / 0x40000000) & 7) << 1) | 1;
  out[pos + 1] = (t >> 22) & 0xff;
  out[pos + 2] = ((t >> 14) & 0xfe) | 1;
  out[pos + 3] = (t >> 7) & 0xff;
  out[pos + 4] = ((t << 1) & 0xfe) | 1;
}

/** Reads a 5-byte PTS/DTS field at `buf[pos]` (marker bits are not checked). */
export function readTimestamp(buf: Uint8Array, pos: number): number {
  const high = (buf[pos] >> 1) & 7;
  const low = (buf[pos + 1] << 22) | ((buf[pos + 2] >> 1) << 15) | (buf[pos + 3] << 7) |
    (buf[pos + 4] >> 1);
  return high * 0x40000000 + low;
}

/** Writes a 6-byte PCR field (33-bit base, extension 0) at `out[pos]`; `base` is already wrapped. */
export function writePcr(out: Uint8Array, pos: number, base: number): void {
  const hi = Math.floor(base / 2); // bits 32..1
  out[pos] = (hi >>> 24) & 0xff;
  out[pos + 1] = (hi >>> 16) & 0xff;
  out[pos + 2] = (hi >>> 8) & 0xff;
  out[pos + 3] = hi & 0xff;
  out[pos + 4] = ((base & 1) << 7) | 0x7e;
  out[pos + 5] = 0;
}

/**
 * Turns 33-bit timestamps into a monotonic timeline: each value is placed in
 * the 2^33 period nearest to the previous one, so a wrap adds 2^33 instead of
 * jumping back.
 */
export class Unwrapper {
  #last = Number.NaN;

  /** The unwrapped value of the 33-bit timestamp `raw`, which becomes the new reference. */
  unwrap(raw: number): number {
    if (Number.isNaN(this.#last)) {
      this.#last = raw;
      return raw;
    }
    this.#last = this.near(raw);
    return this.#last;
  }

  /** The unwrapped value of `raw` nearest to the reference, without moving the reference. */
  near(raw: number): number {
    if (Number.isNaN(this.#last)) return raw;
    return raw + Math.round((this.#last - raw) / WRAP_33) * WRAP_33;
  }
}
