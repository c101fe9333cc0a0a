/**
 * The players of one stream: each reads the ring at its own cursor and hands batches to its
 * sink; players with nothing to do are parked and all woken by one ring change (or one timer
 * after it, for a coalescing delay), busy ones are checked for stalls by one timer per
 * stream. No promise or allocation per frame.
 */

import type { MediaFrame } from "./frame.ts";
import type { MonotonicClock } from "./_clock.ts";
import { type CursorHooks, type ReplayPlan, RingCursor } from "./_cursor.ts";
import {
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
  #parked = new Set<Player>();
  #waking = new Set<Player>();
  #armed = false;

  constructor(ring: CursorHooks["ring"], delayMs: number) {
    this.#ring = ring;
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

  #wakeLater = (): void => void setTimeout(this.#wake, this.delayMs);

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
  readonly clock: MonotonicClock;
  /** Parked players by wake delay (a stream's players mostly share one or two). */
  #groups = new Map<number, ParkedGroup>();
  /** Players with a stall timeout, for the sweep. */
  #watched = new Set<Player>();
  #sweep: ReturnType<typeof setInterval> | undefined;

  constructor(hooks: CursorHooks, clock: MonotonicClock) {
    this.hooks = hooks;
    this.clock = clock;
  }

  /** Start a player; the promise settles when it ends. */
  play(sink: PlaySink, replay: ReplayPlan, options: PlayOptions): Promise<PlayResult> {
    const delayMs = Math.max(0, options.coalesceMs ?? 0);
    let group = this.#groups.get(delayMs);
    if (group === undefined) {
      group = new ParkedGroup(this.hooks.ring, delayMs);
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

/** One play: a cursor, a reused batch, and the sink. */
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
    this.result = new Promise((resolve) => (this.#resolve = resolve));
    const signal = options.signal;
    if (signal) {
      this.#signal = signal;
      if (signal.aborted) queueMicrotask(this.#abort);
      else signal.addEventListener("abort", this.#abort, { once: true });
    }
  }

  /** Hand over everything due, then wait for the sink or the ring. */
  pump(): void {
    const cursor = this.#cursor;
    const batch = this.#batch;
    while (!this.#done && this.#busySince < 0) {
      let count = 0;
      for (let frame; count < this.#maxBatch && (frame = cursor.next()) !== undefined;) {
        batch[count++] = frame;
      }
      if (count === 0) {
        if (cursor.finished) this.#finish(cursor.evicted ? "evicted" : "ended");
        else this.#group.add(this);
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
    this.#cursor.release();
    this.#batch.length = 0;
    const dropped = this.#cursor.dropped;
    this.#resolve(end === "failed" ? { end, dropped, error } : { end, dropped });
  }
}
