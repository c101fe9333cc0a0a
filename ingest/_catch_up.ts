/**
 * Pacing for a player that joins behind the live edge: it starts on the GOP replay, at once,
 * and catches up with the live frames at a steady multiple of real time instead of in one
 * burst, so that players whose jitter buffers time packets by their arrival (GStreamer's
 * `rtpjitterbuffer`, browsers' WebRTC) see a stream that only runs a little fast.
 *
 * @module
 */

import type { MediaFrame } from "../mod.ts";

/** The longest single wait: a timestamp jump forward ends the pacing instead. */
const MAX_WAIT_MS = 1000;
/**
 * A frame that became available this much later than its paced time came live: the player
 * has caught up.
 */
const LATE_MS = 50;

/**
 * Says how long to hold each frame of one player: the first goes at once, and a frame that
 * moves the decode time forward goes at the first's send time plus that distance divided by
 * `speed` (frames at or before the newest decode time so far, as audio interleaved with
 * video, go with it). Once such a frame comes later than its paced time (the player has
 * caught up: live frames come in real time, slower than the schedule), pacing ends for good,
 * as it does on a timestamp jump of more than a second's wait. A frame that was available in
 * time but is sent late (the sender's timer fired late, its write or the machine stalled)
 * does not end the pacing: it goes at once with the others due by then, and the schedule
 * stays where it was (ending the pacing would send the rest of the replay in one burst, which
 * is what the pacing is there to avoid; moving the schedule back would keep a loaded server's
 * players behind and paced).
 *
 * @example
 * ```ts
 * import { CatchUpPacer } from "./_catch_up.ts";
 *
 * const pacer = new CatchUpPacer(2);
 * pacer.delayMs({ dts: 0 }, 1000); // 0: the first frame goes at once
 * pacer.delayMs({ dts: 9000 }, 1000); // 50: 100 ms of media at twice real time
 * pacer.delayMs({ dts: 8000 }, 1000); // 0: not later than what was paced
 * pacer.delayMs({ dts: 18000 }, 1300); // 0: due at 1100, it came live: caught up
 * pacer.caughtUp; // true
 * ```
 */
export class CatchUpPacer {
  readonly #speed: number;
  #startMs: number | undefined;
  #startDts = 0;
  #topDts = 0;
  #done: boolean;

  /** Pace at `speed` times real time (above 1; 0 or less never paces). */
  constructor(speed: number) {
    this.#speed = speed;
    this.#done = !(speed > 0);
  }

  /** Whether pacing has ended (caught up, or not pacing at all). */
  get caughtUp(): boolean {
    return this.#done;
  }

  /**
   * Milliseconds to wait before sending `frame` (0: send now), at `nowMs`; `availableMs` is
   * when the sender had the frame at the latest (e.g. when its batch was handed over).
   */
  delayMs(
    frame: Pick<MediaFrame, "dts">,
    nowMs: number = performance.now(),
    availableMs: number = nowMs,
  ): number {
    if (this.#done) return 0;
    if (this.#startMs === undefined) {
      this.#startMs = nowMs;
      this.#startDts = this.#topDts = frame.dts;
      return 0;
    }
    if (frame.dts <= this.#topDts) return 0;
    this.#topDts = frame.dts;
    const dueMs = this.#startMs + (frame.dts - this.#startDts) / 90 / this.#speed;
    const wait = dueMs - nowMs;
    if (wait > MAX_WAIT_MS || availableMs - dueMs > LATE_MS) {
      this.#done = true;
      return 0;
    }
    return Math.max(0, wait);
  }
}
