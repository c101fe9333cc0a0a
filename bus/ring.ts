/**
 * A fixed-capacity ring of frame references addressed by ever-increasing sequence
 * numbers: the one buffer every subscriber of a stream reads at its own cursor.
 *
 * @module
 */

import type { MediaFrame } from "./frame.ts";

/**
 * The shared ring of one stream. The publisher appends; readers keep their own
 * sequence cursor and read {@linkcode FrameRing.at}. Nothing is copied per reader and
 * the publisher never waits: a reader that falls more than `capacity` frames behind
 * finds its frames overwritten ({@linkcode FrameRing.oldest} has passed its cursor).
 *
 * @example
 * ```ts
 * import { FrameRing } from "@arcly/stream";
 *
 * const ring = new FrameRing(2);
 * const frame = { track: 0, kind: "audio", codec: "aac", pts: 0, dts: 0, flags: 0, data: new Uint8Array(1) } as const;
 * ring.push(frame);
 * ring.at(0) === frame; // true
 * ```
 */
export class FrameRing {
  /** How many frames the ring holds. */
  readonly capacity: number;
  #slots: (MediaFrame | undefined)[];
  #head = 0;
  #closed = false;
  #wake: (() => void) | undefined;
  #arrival: Promise<void> | undefined;
  #wakeScheduled = false;

  /** Make an empty ring of `capacity` slots. */
  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`ring capacity must be a positive integer, got ${capacity}`);
    }
    this.capacity = capacity;
    this.#slots = new Array(capacity).fill(undefined);
  }

  /** The sequence number the next pushed frame will get. */
  get head(): number {
    return this.#head;
  }

  /** The sequence number of the oldest frame still held. */
  get oldest(): number {
    return Math.max(0, this.#head - this.capacity);
  }

  /** Whether {@linkcode FrameRing.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Append a frame and return its sequence number. Constant time whatever the number of
   * readers: waiting readers are woken once, in a microtask, for any number of pushes.
   */
  push(frame: MediaFrame): number {
    const seq = this.#head;
    this.#slots[seq % this.capacity] = frame;
    this.#head = seq + 1;
    this.#scheduleWake();
    return seq;
  }

  /** The frame at `seq`, or `undefined` when it is not yet written or already overwritten. */
  at(seq: number): MediaFrame | undefined {
    if (seq < this.oldest || seq >= this.#head) return undefined;
    return this.#slots[seq % this.capacity];
  }

  /** Stop accepting frames and wake every reader so it can drain and end. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#scheduleWake();
  }

  /**
   * Resolves once a frame is pushed or the ring closes. All waiting readers share one
   * promise, so a push costs the same with one reader or ten thousand.
   */
  changed(): Promise<void> {
    this.#arrival ??= new Promise<void>((resolve) => (this.#wake = resolve));
    return this.#arrival;
  }

  #scheduleWake(): void {
    if (this.#arrival === undefined || this.#wakeScheduled) return;
    this.#wakeScheduled = true;
    queueMicrotask(() => {
      this.#wakeScheduled = false;
      const wake = this.#wake;
      this.#arrival = undefined;
      this.#wake = undefined;
      wake?.();
    });
  }
}
