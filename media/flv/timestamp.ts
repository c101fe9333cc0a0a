/**
 * Unwrapping of 32-bit millisecond timestamps (FLV tags, RTMP messages).
 *
 * @module
 */

/**
 * Turns 32-bit wrapping millisecond timestamps into a continuous count:
 * each new value is placed within ±2^31 ms of the previous one.
 *
 * @example
 * ```ts
 * import { TimestampUnwrapper } from "./timestamp.ts";
 *
 * const u = new TimestampUnwrapper();
 * u.unwrap(0xffff_fff0); // 4294967280
 * u.unwrap(0x10); // 4294967312 (past the wrap)
 * ```
 */
export class TimestampUnwrapper {
  #lastRaw = -1;
  #last = 0;

  /** The unwrapped value of the 32-bit timestamp `raw`. */
  unwrap(raw: number): number {
    raw >>>= 0;
    if (this.#lastRaw < 0) {
      this.#last = raw;
    } else {
      this.#last += (raw - this.#lastRaw) | 0;
    }
    this.#lastRaw = raw;
    return this.#last;
  }
}
