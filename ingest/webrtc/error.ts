/**
 * The error WHIP and WHEP requests fail with: an HTTP status and a reason for the client.
 *
 * @module
 */

/**
 * A request the WebRTC endpoints refuse: `status` is the HTTP status sent back, the
 * message its body.
 *
 * @example
 * ```ts
 * import { WebRtcError } from "@arcly/stream/webrtc";
 *
 * const error = new WebRtcError(406, "the offer has no H.264 video");
 * console.log(error.status); // 406
 * ```
 */
export class WebRtcError extends Error {
  /** The HTTP status for the response. */
  readonly status: number;

  /** Make an error answered with `status` and `message`. */
  constructor(status: number, message: string) {
    super(message);
    this.name = "WebRtcError";
    this.status = status;
  }
}
