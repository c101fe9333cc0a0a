/**
 * The error SRT parsers and the listener throw for bad or unsupported input.
 *
 * @module
 */

/**
 * A malformed packet, or a request the listener refuses. When the listener answers a
 * handshake with a rejection, `reason` is the code sent (one of `RejectReason`).
 *
 * @example
 * ```ts
 * import { RejectReason, SrtError } from "@arcly/stream/srt";
 *
 * const error = new SrtError("stream live/a already has a publisher", RejectReason.CONFLICT);
 * console.log(error.reason); // 1409
 * ```
 */
export class SrtError extends Error {
  /** The rejection code to answer a handshake with, when the error refuses one. */
  readonly reason?: number;

  /** Make an error with a human-readable message and, optionally, a rejection code. */
  constructor(message: string, reason?: number) {
    super(message);
    this.name = "SrtError";
    this.reason = reason;
  }
}
