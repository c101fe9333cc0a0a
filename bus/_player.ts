/**
 * The players of one stream: each reads the ring at its own cursor and hands batches to its
 * sink; players with nothing to do are parked and all woken by one ring change (or one timer
 * after it, for a coalescing delay), paced players hold the frames not due yet in the ring
 * and are woken by one timer per due millisecond, busy ones are checked for stalls by one
 * timer per stream. No promise or allocation per frame.
 */

import { FrameFlags, type MediaFrame } from "./frame.ts";
import type { MonotonicClock } from "./_clock.ts";
import type { Timers } from "./_timers.ts";
import { type CursorHooks, type ReplayPlan, RingCursor } from "./_cursor.ts";
import { CatchUpPacer } from "./_catch_up.ts";
import { RealTimePacer } from "./_real_time.ts";
import { PacingTimer } from "./_pacing_timer.ts";
import {
  PACING_STEP_MS,
  type PlayEnd,
  type PlayOptions,
  type PlayResult,
  type PlaySink,
  STALL_CHECK_MS,
} from "./play.ts";

const DEFAULT_MAX_BATCH = 256;
/** A batch longer than this (a replay) is let go after its write rather than reused. */
const TRIM_BATCH = 16;

/**
 * Parked players with one wake delay: all woken together, `delayMs` after the ring changes
 * (at once for 0), so a delay merges what the publisher sends meanwhile into one batch.
 */
class ParkedGroup {
  readonly delayMs: number;
  #ring: CursorHooks["ring"];
  #timers: Timers;
  #parked = new Set<Player>();
  #waking = new Set<Player>();
  #armed = false;

  constructor(ring: CursorHooks["ring"], timers: Timers, delayMs: number) {
    this.#ring = ring;
    this.#timers = timers;
    this.delayMs = delayMs;
  }

  add(player: Player): void {
    this.#parked.add(player);
    if (this.#armed) return;
    this.#armed = true;
    this.#ring.changed().then(this.delayMs > 0 ? this.#wakeLater : this.#wake);
  }

  delete(player: Player): void {
    this.#parked.delete(player);
    this.#waking.delete(player);
  }

  #wakeLater = (): void => void this.#timers.setTimeout(this.#wake, this.delayMs);

  #wake = (): void => {
    this.#armed = false;
    const woken = this.#parked;
    this.#parked = this.#waking;
    this.#waking = woken;
    for (const player of woken) player.pump();
    woken.clear();
  };
}

/** Every player of one stream, made once per stream. */
export class PlayerHub {
  readonly hooks: CursorHooks;
  /** What stalls are timed on. */
  readonly clock: MonotonicClock;
  /** What pacing and coalescing wait on. */
  readonly timers: Timers;
  /** Wakes paced players at their frames' due times. */
  readonly pacing: PacingTimer;
  /** Parked players by wake delay (a stream's players mostly share one or two). */
  #groups = new Map<number, ParkedGroup>();
  /** Players with a stall timeout, for the sweep. */
  #watched = new Set<Player>();
  #sweep: ReturnType<typeof setInterval> | undefined;

  /** The players of the stream `hooks` read, timing stalls on `clock`, waiting on `timers`. */
  constructor(hooks: CursorHooks, clock: MonotonicClock, timers: Timers) {
    this.hooks = hooks;
    this.clock = clock;
    this.timers = timers;
    this.pacing = new PacingTimer(timers);
  }

  /** Start a player; the promise settles when it ends. */
  play(sink: PlaySink, replay: ReplayPlan, options: PlayOptions): Promise<PlayResult> {
    const delayMs = Math.max(0, options.coalesceMs ?? 0);
    let group = this.#groups.get(delayMs);
    if (group === undefined) {
      group = new ParkedGroup(this.hooks.ring, this.timers, delayMs);
      this.#groups.set(delayMs, group);
    }
    const player = new Player(this, group, sink, replay, options);
    if (player.stallTimeoutMs < Infinity) this.#watch(player);
    player.pump();
    return player.result;
  }

  /** Forget a player that ended. */
  remove(player: Player): void {
    if (this.#watched.delete(player) && this.#watched.size === 0) {
      clearInterval(this.#sweep);
      this.#sweep = undefined;
    }
  }

  #watch(player: Player): void {
    this.#watched.add(player);
    if (this.#sweep !== undefined) return;
    this.#sweep = setInterval(() => {
      const now = this.clock();
      for (const p of this.#watched) p.checkStall(now);
    }, STALL_CHECK_MS);
    Deno.unrefTimer(this.#sweep);
  }
}

/**
 * One play: a cursor, a reused batch, the sink, and the pacing asked for. A paced player
 * takes a frame only once it is due (within {@linkcode PACING_STEP_MS}); the first that is
 * not is given back to the cursor and the player holds until its time, so the frames it
 * has not taken stay in the ring, where lag and eviction apply as to any slow reader.
 */
class Player {
  readonly result: Promise<PlayResult>;
  readonly stallTimeoutMs: number;
  #hub: PlayerHub;
  #group: ParkedGroup;
  #sink: PlaySink;
  #cursor: RingCursor;
  #batch: MediaFrame[] = [];
  #maxBatch: number;
  #signal: AbortSignal | undefined;
  #resolve!: (result: PlayResult) => void;
  #done = false;
  /** When the pending write started; -1 while none is pending. */
  #busySince = -1;
  /** The catch-up from the replay, until the player is live. */
  #catchUp: CatchUpPacer | undefined;
  /** The stream's clock, with `realTime`. */
  #realTime: RealTimePacer | undefined;
  /** Whether frames are paced at all (either pacer is on). */
  #paced: boolean;
  /**
   * When the player last found nothing to read: every frame it reads later entered the ring
   * after that, so it is the catch-up's availability time (never later than the truth).
   */
  #waitedAt = -Infinity;
  /** The frame held for its time, given back to the cursor, and that time. */
  #held: MediaFrame | undefined;
  #heldDue = 0;
  /** Whether a pacing wake-up is set for `#heldDue`. */
  #holding = false;

  constructor(
    hub: PlayerHub,
    group: ParkedGroup,
    sink: PlaySink,
    replay: ReplayPlan,
    options: PlayOptions,
  ) {
    this.#hub = hub;
    this.#group = group;
    this.#sink = sink;
    this.#cursor = new RingCursor(hub.hooks, replay, options.maxLag ?? Infinity);
    this.#maxBatch = Math.max(1, options.maxBatch ?? DEFAULT_MAX_BATCH);
    this.stallTimeoutMs = options.stallTimeoutMs ?? Infinity;
    const speed = options.catchUpSpeed ?? 0;
    if (speed > 0) this.#catchUp = new CatchUpPacer(speed);
    if (options.realTime) this.#realTime = new RealTimePacer(newestDts(replay), hub.timers.now());
    this.#paced = this.#catchUp !== undefined || this.#realTime !== undefined;
    this.result = new Promise((resolve) => (this.#resolve = resolve));
    const signal = options.signal;
    if (signal) {
      this.#signal = signal;
      if (signal.aborted) queueMicrotask(this.#abort);
      else signal.addEventListener("abort", this.#abort, { once: true });
    }
  }

  /** Hand over everything due, then wait for the sink, the ring or the pacing. */
  pump(): void {
    const batch = this.#batch;
    while (!this.#done && this.#busySince < 0 && !this.#holding) {
      const count = this.#paced ? this.#takePaced(batch) : this.#take(batch);
      if (count === 0) {
        if (this.#holding) return;
        const cursor = this.#cursor;
        if (cursor.finished) this.#finish(cursor.evicted ? "evicted" : "ended");
        else {
          if (this.#catchUp !== undefined) this.#waitedAt = this.#hub.timers.now();
          this.#group.add(this);
        }
        return;
      }
      let pending: void | Promise<void>;
      try {
        pending = this.#sink.write(batch, count);
      } catch (error) {
        return this.#finish("failed", error);
      }
      // A replay's long batch would keep its frames and its length in every idle player.
      if (count > TRIM_BATCH) batch.length = 0;
      if (pending !== undefined) {
        this.#busySince = this.#hub.clock();
        pending.then(this.#drained, this.#failed);
      }
    }
  }

  /** End as stalled when the pending write started more than the timeout before `now`. */
  checkStall(now: number): void {
    if (this.#busySince >= 0 && now - this.#busySince > this.stallTimeoutMs) {
      this.#finish("stalled");
    }
  }

  /** Fill `batch` with what the cursor has; returns how many. */
  #take(batch: MediaFrame[]): number {
    const cursor = this.#cursor;
    let count = 0;
    for (let frame; count < this.#maxBatch && (frame = cursor.next()) !== undefined;) {
      batch[count++] = frame;
    }
    return count;
  }

  /**
   * Fill `batch` with the frames due by a pacing step from now (CONFIG frames are always
   * due); hold at the first that is not. Returns how many.
   */
  #takePaced(batch: MediaFrame[]): number {
    const cursor = this.#cursor;
    const now = this.#hub.timers.now();
    let count = 0;
    for (let frame; count < this.#maxBatch && (frame = cursor.next()) !== undefined;) {
      if (!(frame.flags & FrameFlags.CONFIG)) {
        const due = frame === this.#held ? this.#heldDue : this.#dueMs(frame, now);
        this.#held = undefined;
        if (due > now + PACING_STEP_MS) {
          cursor.unread();
          this.#hold(frame, due);
          break;
        }
      }
      batch[count++] = frame;
    }
    return count;
  }

  /** When media `frame` is due (`-Infinity`: at once); ends the catch-up once it is over. */
  #dueMs(frame: MediaFrame, now: number): number {
    let due = this.#realTime?.dueMs(frame, now) ?? -Infinity;
    const catchUp = this.#catchUp;
    if (catchUp !== undefined) {
      due = Math.max(due, catchUp.dueMs(frame, now, this.#waitedAt));
      if (catchUp.caughtUp) {
        this.#catchUp = undefined;
        this.#paced = this.#realTime !== undefined;
      }
    }
    return due;
  }

  #hold(frame: MediaFrame, due: number): void {
    this.#held = frame;
    this.#heldDue = due;
    this.#holding = true;
    this.#hub.pacing.at(due, this.#resume);
  }

  #resume = (): void => {
    this.#holding = false;
    this.pump();
  };

  #drained = (): void => {
    this.#busySince = -1;
    this.pump();
  };

  #failed = (error: unknown): void => this.#finish("failed", error);

  #abort = (): void => this.#finish("aborted");

  #finish(end: PlayEnd, error?: unknown): void {
    if (this.#done) return;
    this.#done = true;
    this.#signal?.removeEventListener("abort", this.#abort);
    this.#hub.remove(this);
    this.#group.delete(this);
    if (this.#holding) this.#hub.pacing.cancel(this.#heldDue, this.#resume);
    this.#held = undefined;
    this.#cursor.release();
    this.#batch.length = 0;
    const dropped = this.#cursor.dropped;
    this.#resolve(end === "failed" ? { end, dropped, error } : { end, dropped });
  }
}

/** The newest decode time of `replay`'s media, where pacing to the stream's clock starts. */
function newestDts(replay: ReplayPlan): number | undefined {
  let newest: number | undefined;
  for (let i = 0; i < replay.gopLength; i++) {
    const frame = replay.gop[i];
    if (frame.flags & FrameFlags.CONFIG) continue;
    if (newest === undefined || frame.dts > newest) newest = frame.dts;
  }
  return newest;
}
