/**
 * Unwrapping of 32-bit timestamps: FLV tags and RTMP messages (milliseconds),
 * RTP packets (ticks of the payload's clock). Ingest uses it to put frames on
 * the kernel's unwrapped 90 kHz timeline.
 *
 * @module
 */

/**
 * Turns 32-bit wrapping timestamps into a continuous count: each new value is
 * placed within ±2^31 ticks of the previous one, so a wrap continues the count
 * and a small step back stays a step back.
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

  /** The unwrapped value of the 32-bit timestamp `raw`; the first one is taken as is. */
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
