/**
 * Throughput counters folded into one-second windows on the monotonic clock.
 */

import type { MonotonicClock } from "./_clock.ts";

/** Measured throughput of one stream. */
export interface Qos {
  /** Video bits per second over the last completed window. */
  readonly videoBitrateBps: number;
  /** Audio bits per second over the last completed window. */
  readonly audioBitrateBps: number;
  /** Video frames per second over the last completed window. */
  readonly fps: number;
  /** Frames published since the stream started. */
  readonly totalFrames: number;
  /** Payload bytes published since the stream started. */
  readonly totalBytes: number;
}

const WINDOW_MS = 1000;

/** Counts published frames and turns each completed window into rates. */
export class QosMeter {
  #clock: MonotonicClock;
  #totalFrames = 0;
  #totalBytes = 0;
  #windowStart: number | undefined;
  #videoBytes = 0;
  #audioBytes = 0;
  #videoFrames = 0;
  #rates = { video: 0, audio: 0, fps: 0 };
  /** When the latest window closed, so stale rates read as zero. */
  #ratesAt = 0;
  lastFrameMs: number;

  constructor(clock: MonotonicClock) {
    this.#clock = clock;
    this.lastFrameMs = clock();
  }

  /** Count a published frame of `bytes` payload bytes. */
  record(bytes: number, isAudio: boolean): void {
    const now = this.#clock();
    // The clock reads the same for a whole burst: windows move only when time does.
    if (now !== this.lastFrameMs || this.#windowStart === undefined) this.#tick(now);
    this.#totalFrames++;
    this.#totalBytes += bytes;
    if (isAudio) this.#audioBytes += bytes;
    else {
      this.#videoBytes += bytes;
      this.#videoFrames++;
    }
  }

  /** Time moved: note it, and close the window once it spans a second. */
  #tick(now: number): void {
    this.lastFrameMs = now;
    if (this.#windowStart === undefined) {
      this.#windowStart = now; // the first frame opens the first window
      return;
    }
    const elapsed = now - this.#windowStart;
    if (elapsed < WINDOW_MS) return;
    // Rates over [start, now): every frame counted so far, none at `now` yet.
    const seconds = elapsed / 1000;
    this.#rates = {
      video: Math.round((this.#videoBytes * 8) / seconds),
      audio: Math.round((this.#audioBytes * 8) / seconds),
      fps: this.#videoFrames / seconds,
    };
    this.#ratesAt = now;
    this.#windowStart = now;
    this.#videoBytes = this.#audioBytes = this.#videoFrames = 0;
  }

  snapshot(): Qos {
    // A publisher that stopped sending has no current rate, whatever the last window said.
    const fresh = this.#clock() - this.#ratesAt <= 2 * WINDOW_MS;
    return {
      videoBitrateBps: fresh ? this.#rates.video : 0,
      audioBitrateBps: fresh ? this.#rates.audio : 0,
      fps: fresh ? this.#rates.fps : 0,
      totalFrames: this.#totalFrames,
      totalBytes: this.#totalBytes,
    };
  }
}
