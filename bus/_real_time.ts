/**
 * Pacing to the stream's clock: a player that never gets a media frame before its time,
 * so a publisher sending faster than real time (a file pushed without `-re`, a burst after
 * a stall) reaches it at the pace of the media.
 */

import { FrameFlags, type MediaFrame } from "./frame.ts";

/** A player holds a frame back at most this long to keep to the stream's clock. */
const MAX_AHEAD_MS = 1000;
/** Decode times jumping by more than this (either way) restart the clock. */
const TIMESTAMP_JUMP = 5 * 90_000;

/**
 * Says when each media frame of one player is due on the stream's clock: at the anchor's
 * time plus its decode-time distance from the anchor's frame. The anchor is the newest frame
 * of the replay, taken when the play starts (so the replay goes at once and live frames at
 * their time), or else the first frame; it moves to the frame at hand on a DISCONTINUITY,
 * on a decode-time jump of more than 5 s either way, and when the frame would be due more
 * than a second from now (so a frame is never held longer than that).
 *
 * @example
 * ```ts
 * import { RealTimePacer } from "./_real_time.ts";
 *
 * const pacer = new RealTimePacer(90_000, 1000);
 * const frame = (dts: number) => ({ dts, flags: 0 });
 * pacer.dueMs(frame(90_000), 1000); // 1000: the replay's newest, at once
 * pacer.dueMs(frame(99_000), 1000); // 1100: 100 ms of media later
 * ```
 */
export class RealTimePacer {
  #anchorDts: number | undefined;
  #anchorMs: number;
  #lastDts: number;

  /** Anchor at decode time `startDts` (none: at the first frame) at `nowMs`. */
  constructor(startDts: number | undefined, nowMs: number) {
    this.#anchorDts = startDts;
    this.#anchorMs = nowMs;
    this.#lastDts = startDts ?? NaN;
  }

  /** When media `frame` is due, on the clock that reads `nowMs` now. */
  dueMs(frame: Pick<MediaFrame, "dts" | "flags">, nowMs: number): number {
    const jumped = Math.abs(frame.dts - this.#lastDts) > TIMESTAMP_JUMP;
    this.#lastDts = frame.dts;
    if (this.#anchorDts === undefined || jumped || frame.flags & FrameFlags.DISCONTINUITY) {
      this.#anchorDts = frame.dts;
      this.#anchorMs = nowMs;
    }
    const due = this.#anchorMs + (frame.dts - this.#anchorDts) / 90;
    if (due <= nowMs + MAX_AHEAD_MS) return due;
    this.#anchorDts = frame.dts;
    return this.#anchorMs = nowMs;
  }
}
