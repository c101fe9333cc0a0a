/** A play sink for kernel tests that records what it was handed, and when. */

import type { MediaFrame, PlaySink } from "../../mod.ts";

/**
 * A sink that records every batch (and, with a clock, when each frame was handed over);
 * `hold` makes writes pend until `release()`.
 */
export class RecordingSink implements PlaySink {
  batches: MediaFrame[][] = [];
  /** The clock's reading at each frame's write, in the order handed over. */
  at: number[] = [];
  held: PromiseWithResolvers<void> | undefined;
  hold = false;
  readonly #clock: (() => number) | undefined;

  /** Record hand-over times on `clock`, when given. */
  constructor(clock?: () => number) {
    this.#clock = clock;
  }

  write(frames: readonly MediaFrame[], count: number): void | Promise<void> {
    this.batches.push(frames.slice(0, count));
    if (this.#clock) { for (let i = 0; i < count; i++) this.at.push(this.#clock()); }
    if (!this.hold) return;
    this.held = Promise.withResolvers();
    return this.held.promise;
  }

  release(): void {
    this.hold = false;
    this.held?.resolve();
  }

  /** Every frame handed over, in order. */
  get frames(): MediaFrame[] {
    return this.batches.flat();
  }

  get pts(): number[] {
    return this.frames.map((f) => f.pts);
  }
}
