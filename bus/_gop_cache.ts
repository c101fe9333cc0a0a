/**
 * The keyframe-anchored replay buffer behind instant start.
 */

import type { MediaFrame } from "./frame.ts";

/**
 * Frames since the latest keyframe, at most `capacity` of them. Each GOP gets a fresh
 * array, so a reader may hold the previous one (and the length it saw) without a copy.
 */
export class GopCache {
  readonly capacity: number;
  #frames: MediaFrame[] = [];
  #overflowed = false;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  /**
   * Take a published frame. `startsGop` marks a random access point that anchors a new GOP.
   * Returns true exactly once per GOP: when the first frame has to be left out.
   */
  add(frame: MediaFrame, startsGop: boolean): boolean {
    if (this.capacity === 0) return false;
    if (startsGop) {
      this.#frames = [frame];
      this.#overflowed = false;
      return false;
    }
    if (this.#frames.length === 0) return false; // nothing anchors a GOP yet
    if (this.#frames.length < this.capacity) {
      this.#frames.push(frame);
      return false;
    }
    if (this.#overflowed) return false;
    this.#overflowed = true;
    return true;
  }

  /** The current GOP's frames and how many of them belong to it now. */
  snapshot(): { frames: readonly MediaFrame[]; length: number } {
    return { frames: this.#frames, length: this.#frames.length };
  }
}
