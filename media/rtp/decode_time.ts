/**
 * Decode-time recovery for video received over RTP, which carries presentation times
 * only. A decoder with a reorder depth of R outputs a picture once R later pictures are
 * decoded; so, like a decoder's output process, the decode time of each picture is the
 * (R+1)-th largest presentation time seen so far. R comes from the SPS when it says
 * (H.264 VUI `max_num_reorder_frames`, H.265 `sps_max_num_reorder_pics`, POC type 2) and
 * is otherwise learned from picture order counts: the most pictures that were decoded
 * before a picture but follow it in output order.
 *
 * @module
 */

/** The largest reorder depth a conforming stream can have (H.264 and H.265 DPB size). */
const MAX_REORDER = 16;
/** Presentation times are kept for this many frames at most. */
const WINDOW = MAX_REORDER + 1;
/** A presentation time this far behind the newest one is a restart, not a reorder. */
const RESTART_TICKS = 10 * 90000;
/** Picture order counts remembered per coded video sequence for learning R. */
const POC_MEMORY = 32;

/** Turns the presentation times of one video track, in decode order, into decode times. */
export class DtsRecovery {
  /** The largest presentation times seen, ascending. */
  #window: number[] = [];
  #prevDts = -Infinity;
  #hint: number | undefined;
  #learned = 0;
  #pocs: number[] = [];
  #frameTicks = 3000;

  /** The reorder depth in use. */
  get reorder(): number {
    return Math.min(MAX_REORDER, Math.max(this.#hint ?? 0, this.#learned));
  }

  /** What the SPS says: its reorder depth and frame rate, each when it says. */
  configure(reorder: number | undefined, frameRate: number | undefined): void {
    this.#hint = reorder;
    if (frameRate && frameRate > 0 && frameRate < 1000) this.#frameTicks = 90000 / frameRate;
  }

  /**
   * The decode time of the next picture in decode order: `pts` on the 90 kHz clock, its
   * picture order count when known, and whether it starts a coded video sequence.
   */
  next(pts: number, poc: number | undefined, startsSequence: boolean): number {
    const window = this.#window;
    if (window.length > 0 && pts < window[window.length - 1] - RESTART_TICKS) {
      window.length = 0;
      this.#prevDts = -Infinity;
    }
    if (poc !== undefined) this.#learn(poc, startsSequence);
    let at = window.length;
    while (at > 0 && window[at - 1] > pts) at--;
    window.splice(at, 0, pts);
    if (window.length > WINDOW) window.shift();
    const k = this.reorder + 1;
    const candidate = window.length >= k
      ? window[window.length - k]
      : window[0] - Math.round((k - window.length) * this.#frameTicks);
    let dts = Math.min(candidate, pts);
    if (dts <= this.#prevDts) dts = this.#prevDts + 1;
    this.#prevDts = dts;
    return dts;
  }

  #learn(poc: number, startsSequence: boolean): void {
    const pocs = this.#pocs;
    if (startsSequence) pocs.length = 0;
    let later = 0;
    for (const p of pocs) if (p > poc) later++;
    if (later > this.#learned) this.#learned = later;
    pocs.push(poc);
    if (pocs.length > POC_MEMORY) pocs.shift();
  }
}
