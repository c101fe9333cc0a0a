/**
 * The error every RTMP parser and session throws for bad or unsupported input.
 *
 * @module
 */

/**
 * A protocol violation or an unsupported feature on one RTMP connection. The
 * server closes that connection and logs `message` as the reason.
 *
 * @example
 * ```ts
 * import { RtmpError } from "@arcly/stream/rtmp";
 *
 * try {
 *   throw new RtmpError("chunk size 2147483648 out of range");
 * } catch (e) {
 *   if (e instanceof RtmpError) console.log(`closing: ${e.message}`);
 * }
 * ```
 */
export class RtmpError extends Error {
  /** Make an error with a human-readable reason. */
  constructor(message: string) {
    super(message);
    this.name = "RtmpError";
  }
}
