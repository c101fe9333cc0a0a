/**
 * The play line every egress runs: a stream's replay, then live frames, handed to a
 * protocol's sink in batches, until the stream ends, the reader falls too far behind, its
 * sink stalls or fails, or its signal aborts. Protocols supply only the sink.
 *
 * @module
 */

import type { MediaFrame } from "./frame.ts";

/**
 * Why a play ended:
 * - `"ended"`: the stream closed and every buffered frame was handed over;
 * - `"evicted"`: the reader skipped more than `maxLag` frames in all;
 * - `"stalled"`: one sink write stayed pending longer than `stallTimeoutMs`;
 * - `"aborted"`: the `signal` aborted;
 * - `"failed"`: the sink threw or its write rejected (the error is in {@linkcode PlayResult}).
 */
export type PlayEnd = "ended" | "evicted" | "stalled" | "aborted" | "failed";

/**
 * Where a play's frames go. `write` gets every frame that is due at once, in order; it
 * returns nothing when it took them, or a promise that settles once it can take more
 * (its socket drained). Frames that arrive meanwhile wait in the stream's ring and come in
 * the next batch; a sink that stays behind for a ring skips ahead to a keyframe.
 */
export interface PlaySink {
  /**
   * Take `frames[0]` to `frames[count - 1]`. The array is reused for the next batch: keep
   * the frames, never the array. Throwing or rejecting ends the play as `"failed"`.
   */
  write(frames: readonly MediaFrame[], count: number): void | Promise<void>;
}

/** Options of {@linkcode StreamHandle.play}. */
export interface PlayOptions {
  /** Start with the replay buffer: cached configs, then the current GOP (default true). */
  replay?: boolean;
  /** End as `"evicted"` once more than this many frames were skipped in all (default ∞). */
  maxLag?: number;
  /**
   * End as `"stalled"` once one write has been pending this long, in milliseconds: a reader
   * whose socket never drains. Checked every {@linkcode STALL_CHECK_MS} ms (default ∞).
   */
  stallTimeoutMs?: number;
  /** End as `"aborted"` when this aborts. */
  signal?: AbortSignal;
  /** Most frames in one batch (default 256). */
  maxBatch?: number;
  /**
   * Wait this long, in milliseconds, after new frames arrive before handing them over, so
   * that what the publisher sends meanwhile goes out in the same batch (one write instead
   * of several): fewer, larger writes for at most this much extra latency. The replay is
   * never delayed. Default 0: at once.
   */
  coalesceMs?: number;
}

/** How a play ended. */
export interface PlayResult {
  /** Why it ended. */
  readonly end: PlayEnd;
  /** Frames skipped because the reader fell behind. */
  readonly dropped: number;
  /** What the sink threw, for `"failed"`. */
  readonly error?: unknown;
}

/** How often stalled writes are looked for, in milliseconds. */
export const STALL_CHECK_MS = 250;
