/**
 * What every pull client shares: one connection to a remote source (an RTSP camera, another
 * server's RTMP or SRT, an HLS playlist, a WHEP endpoint) that hands its media to the caller
 * as frames of the bus's contract. The server's sources (`server/sources.ts`) republish
 * those frames under a local stream key, reconnecting when a connection ends.
 *
 * @module
 */

import type { Logger, MediaFrame } from "../mod.ts";

/** Options every pull client takes. */
export interface PullOptions {
  /**
   * Each frame, in the contract of `bus/frame.ts`: 90 kHz unwrapped timestamps,
   * length-prefixed NAL units, raw audio access units, a track's `CONFIG` before its first
   * media frame and again when it changes. Called synchronously as frames are parsed.
   */
  onFrame(frame: MediaFrame): void;
  /** Ends the connection when aborted; the pull then resolves. */
  signal?: AbortSignal;
  /**
   * Deadline of each step of the set-up (connect, handshake, each request) and the longest
   * silence once media flows, in ms (default 10,000): past it the pull rejects.
   */
  timeoutMs?: number;
  /** Where the client logs what it does (peer strings escaped). */
  logger?: Logger;
}

/**
 * A pull client: connect to `url` and deliver its frames to `options.onFrame` until the
 * source ends (the promise resolves), the connection fails or goes silent past the timeout
 * (it rejects with an `Error` saying why), or `options.signal` aborts (it resolves).
 */
export type PullClient = (url: URL, options: PullOptions) => Promise<void>;
