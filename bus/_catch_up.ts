/**
 * Pacing for a player that joins behind the live edge: it starts on the GOP replay, at once,
 * and catches up with the live frames at a steady multiple of real time instead of in one
 * burst, so that players whose jitter buffers time packets by their arrival (GStreamer's
 * `rtpjitterbuffer`, browsers' WebRTC) see a stream that only runs a little fast.
 */

import type { MediaFrame } from "./frame.ts";

/** The longest single wait: a timestamp jump forward ends the pacing instead. */
const MAX_WAIT_MS = 1000;
/**
 * A frame that became available this much later than its paced time came live: the player
 * has caught up.
 */
const LATE_MS = 50;

/**
 * Says when to hand each media frame of one player over: the first at once, and a frame that
 * moves the decode time forward at the first's time plus that distance divided by `speed`
 * (frames at or before the newest decode time so far, as audio interleaved with video, go
 * with it). Once such a frame became available later than its paced time (the player has
 * caught up: live frames come in real time, slower than the schedule), pacing ends for good,
 * as it does on a timestamp jump of more than a second's wait. A frame that was available in
 * time but is handed over late (the player's timer fired late, its sink's write or the
 * machine stalled) does not end the pacing: it goes at once with the others due by then, and
 * the schedule stays where it was (ending the pacing would hand the rest of the replay over
 * in one burst, which is what the pacing is there to avoid; moving the schedule back would
 * keep a loaded server's players behind and paced). That is why the availability time must
 * never be later than when the frame could first have been had: underestimating it only
 * delays the end of the catch-up by a frame or two, overestimating it ends the catch-up
 * early and bursts the rest.
 *
 * @example
 * ```ts
 * import { CatchUpPacer } from "./_catch_up.ts";
 *
 * const pacer = new CatchUpPacer(2);
 * pacer.dueMs({ dts: 0 }, 1000, 1000); // -Infinity: the first frame goes at once
 * pacer.dueMs({ dts: 9000 }, 1000, 1000); // 1050: 100 ms of media at twice real time
 * pacer.dueMs({ dts: 8000 }, 1000, 1000); // -Infinity: not later than what was paced
 * pacer.dueMs({ dts: 18000 }, 1300, 1300); // -Infinity: due at 1100, it came live
 * pacer.caughtUp; // true
 * ```
 */
export class CatchUpPacer {
  readonly #speed: number;
  #startMs: number | undefined;
  #startDts = 0;
  #topDts = 0;
  #done = false;

  /** Pace at `speed` times real time (above 1). */
  constructor(speed: number) {
    this.#speed = speed;
  }

  /** Whether pacing has ended: the player caught up. */
  get caughtUp(): boolean {
    return this.#done;
  }

  /**
   * When to hand media `frame` over, on the clock that reads `nowMs` now: `-Infinity` for
   * at once, else its time on the schedule (maybe past: it goes at once). `availableMs` is no
   * later than when the frame could first have been had (it entered the stream).
   */
  dueMs(frame: Pick<MediaFrame, "dts">, nowMs: number, availableMs: number): number {
    if (this.#done) return -Infinity;
    if (this.#startMs === undefined) {
      this.#startMs = nowMs;
      this.#startDts = this.#topDts = frame.dts;
      return -Infinity;
    }
    if (frame.dts <= this.#topDts) return -Infinity;
    this.#topDts = frame.dts;
    const dueMs = this.#startMs + (frame.dts - this.#startDts) / 90 / this.#speed;
    if (dueMs - nowMs > MAX_WAIT_MS || availableMs - dueMs > LATE_MS) {
      this.#done = true;
      return -Infinity;
    }
    return dueMs;
  }
}
