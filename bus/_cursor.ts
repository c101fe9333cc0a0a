/**
 * A subscriber's place in its stream: the replay it is still owed, then its sequence
 * number in the shared ring.
 */

import type { MediaFrame } from "./frame.ts";
import type { FrameRing } from "./ring.ts";

/** What a cursor needs from its stream, made once per stream. */
export interface CursorHooks {
  readonly ring: FrameRing;
  startsGop(frame: MediaFrame): boolean;
  lagged(skipped: number): void;
  evicted(): void;
  released(): void;
}

/** What a new subscriber replays before live frames: up to two configs, then a GOP prefix. */
export interface ReplayPlan {
  readonly configs: readonly MediaFrame[];
  readonly gop: readonly MediaFrame[];
  readonly gopLength: number;
}

/** An empty replay: the subscriber starts at the live edge. */
export const NOTHING_TO_REPLAY: ReplayPlan = { configs: [], gop: [], gopLength: 0 };

/**
 * Reads one subscriber's frames: first its replay plan, then the ring from the head it saw
 * when it subscribed. Falling more than a ring behind skips to the oldest buffered GOP start;
 * past `maxLag` skipped frames the cursor is evicted.
 */
export class RingCursor {
  /** Frames skipped because the reader fell behind. */
  dropped = 0;
  /** Whether the cursor passed its `maxLag`. */
  evicted = false;
  /** Whether the cursor was given up (cancelled, evicted or drained). */
  released = false;
  /** Whether a reader is parked until the ring changes. */
  waiting = false;
  #hooks: CursorHooks;
  #ring: FrameRing;
  #replay: ReplayPlan;
  #maxLag: number;
  #seq: number;
  #configAt = 0;
  #gopAt = 0;
  /** The replay is done and the cursor held: the next frame can only come from the ring. */
  #live: boolean;

  constructor(hooks: CursorHooks, replay: ReplayPlan, maxLag: number) {
    this.#hooks = hooks;
    this.#ring = hooks.ring;
    this.#replay = replay;
    this.#maxLag = maxLag;
    this.#seq = hooks.ring.head;
    this.#live = replay.configs.length === 0 && replay.gopLength === 0;
  }

  /**
   * The next frame when one is ready. `undefined` means wait for the ring to change, or,
   * when {@linkcode RingCursor.finished}, that nothing more will come.
   */
  next(): MediaFrame | undefined {
    if (this.#live) {
      const frame = this.#ring.at(this.#seq);
      if (frame !== undefined) {
        this.#seq++;
        return frame;
      }
    }
    return this.#slowNext();
  }

  /**
   * Give back the frame the last {@linkcode RingCursor.next} returned: the next call returns
   * it again or, once the ring has overwritten it, skips ahead as any late read does.
   */
  unread(): void {
    if (this.#live) this.#seq--;
    else if (this.#gopAt > 0) this.#gopAt--;
    else this.#configAt--;
  }

  /**
   * Once {@linkcode RingCursor.next} returned `undefined`: whether nothing more will come
   * (released, evicted, or the ring closed and read to its end) rather than not yet.
   */
  get finished(): boolean {
    return this.released || (this.#ring.closed && this.#seq >= this.#ring.head);
  }

  /** Give up the cursor's place; idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.#live = false;
    this.#replay = NOTHING_TO_REPLAY;
    this.#hooks.released();
  }

  /** The replay, lag handling and end of stream: everything but the plain live read. */
  #slowNext(): MediaFrame | undefined {
    if (this.released) return undefined;
    const replay = this.#replay;
    if (this.#configAt < replay.configs.length) return replay.configs[this.#configAt++];
    while (this.#gopAt < replay.gopLength) {
      const frame = replay.gop[this.#gopAt++];
      if (!replay.configs.includes(frame)) return frame;
    }
    this.#live = true;
    if (this.#seq < this.#ring.oldest && !this.#resync()) return undefined;
    if (this.#seq < this.#ring.head) return this.#ring.at(this.#seq++);
    return undefined;
  }

  /** Jump past overwritten frames; false when that costs the cursor its place. */
  #resync(): boolean {
    const ring = this.#ring;
    let target = ring.oldest;
    for (let at = target; at < ring.head; at++) {
      if (this.#hooks.startsGop(ring.at(at)!)) {
        target = at;
        break;
      }
    }
    const skipped = target - this.#seq;
    this.#seq = target;
    this.dropped += skipped;
    this.#hooks.lagged(skipped);
    if (this.dropped <= this.#maxLag) return true;
    this.evicted = true;
    this.#hooks.evicted();
    this.release();
    return false;
  }
}
