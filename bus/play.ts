/**
 * The play line every egress runs: a stream's replay, then live frames, handed to a
 * protocol's sink in batches (paced, when asked, to catch up from the replay or to keep to
 * the stream's clock), until the stream ends, the reader falls too far behind, its sink
 * stalls or fails, or its signal aborts. Protocols supply only the sink.
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
 * the next batch, as do the frames a paced play holds until their time; a play that stays
 * behind for a ring skips ahead to a keyframe.
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
  /**
   * Replay only the media frames decoded after this time (90 kHz; configs always): a reader
   * resuming where it stopped (an RTSP PLAY after PAUSE) is handed, and paced over, only
   * what it has not had.
   */
  replayAfter?: number;
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
  /**
   * Catch up from the replay at this multiple of real time (above 1) instead of in one
   * burst: the replay, then what came meanwhile, is handed over paced by its decode times,
   * until a frame arrives later than its paced time (the player is live) or the decode time
   * jumps forward by more than a second's wait. For players whose jitter buffers time
   * packets by their arrival (GStreamer's `rtpjitterbuffer`, libsrt, browsers' WebRTC),
   * which take a burst as a clock jump. Default 0: no pacing.
   */
  catchUpSpeed?: number;
  /**
   * Never hand a media frame over before its time on the stream's clock: its decode-time
   * distance from the replay's newest frame (or the first frame) after the play started,
   * restarted on a DISCONTINUITY, a decode-time jump of more than 5 s, or a frame more than
   * a second ahead. A publisher faster than real time then reaches this player at the pace
   * of the media (default false).
   */
  realTime?: boolean;
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

/**
 * Paced players ({@linkcode PlayOptions.catchUpSpeed}, {@linkcode PlayOptions.realTime})
 * get the frames due within this many milliseconds of now with the batch at hand: one
 * write, and no timer, for what is due that soon. 10 ms is below every common frame
 * interval (16.7 ms of video at 60 fps, 20 ms of Opus, 21.3 ms of AAC at 48 kHz), so a
 * frame never goes as early as the one after it is due, and the jitter it adds is far
 * inside a player's jitter buffer (tens to hundreds of ms) and about what timers under load
 * add anyway; a live frame arriving a few ms ahead of its time on the stream's clock (the
 * publisher's jitter) goes at once rather than costing a timer.
 */
export const PACING_STEP_MS = 10;
