/**
 * An SRT reader's sink on the play line: the stream's shared MPEG-TS, frame by frame, into
 * the connection's sender, paced by the stream's clock (anchored at the replay) and, behind
 * the live edge, at the catch-up speed.
 */

import { FrameFlags, type MediaFrame, type PlaySink } from "../../mod.ts";
import { CatchUpPacer } from "../_catch_up.ts";
import type { PacingTimer } from "./_pacing_timer.ts";
import type { SrtSender } from "./_sender.ts";
import type { StreamTs } from "./_stream_ts.ts";

/** A reader holds a frame back at most this long to keep to the stream's clock. */
const MAX_AHEAD_MS = 1000;
/** Decode times jumping by more than this (either way) restart the pacing clock. */
const TIMESTAMP_JUMP = 5 * 90_000;
/**
 * Frames a reader takes ahead of what it has sent; with more held it asks the play line to
 * wait, so that a reader paced behind its stream (the catch-up, a publisher faster than
 * real time) falls behind in the stream's ring, where it skips or is evicted.
 */
const MAX_QUEUED = 16;

/** What a {@linkcode PacedReader} sends with. */
export interface PacedReaderOptions {
  readonly sender: SrtSender;
  /** The stream's shared MPEG-TS. */
  readonly ts: StreamTs;
  /** Monotonic milliseconds. */
  readonly clock: () => number;
  readonly timer: PacingTimer;
  /** Readers catch up from the GOP replay to the live edge at this multiple of real time. */
  readonly catchUpSpeed: number;
  /** The newest decode time in the replay, taken with it: where pacing starts. */
  readonly replayDts: number | undefined;
}

/**
 * One reader's pacing. Each frame is sent when it is due: a CONFIG at once (it keeps the
 * time it was published with, maybe long ago, so it neither paces nor moves the anchor),
 * media at the anchor's time plus its decode-time distance, or later on the catch-up
 * schedule. Frames not due yet wait in order (their references only) and are sent by the
 * shared {@linkcode PacingTimer}: no promise per frame. A reader whose first packets do not
 * open on a PAT (a stream without video repeats its tables only every 500 ms) gets the
 * stream's current PAT and PMT before them.
 */
export class PacedReader implements PlaySink {
  readonly #sender: SrtSender;
  readonly #ts: StreamTs;
  readonly #clock: () => number;
  readonly #timer: PacingTimer;
  readonly #pacer: CatchUpPacer;
  #anchorDts: number | undefined;
  #anchorMs: number;
  #lastDts: number;
  /** Frames taken and not sent yet, from `#head` on. */
  readonly #queue: MediaFrame[] = [];
  #head = 0;
  /** Whether the head frame waits for its due time. */
  #held = false;
  /** Settled once the queue is empty again, while someone waits for that. */
  #emptied: PromiseWithResolvers<void> | undefined;
  #stopped = false;
  /** Whether any MPEG-TS went out yet. */
  #opened = false;

  constructor(options: PacedReaderOptions) {
    this.#sender = options.sender;
    this.#ts = options.ts;
    this.#clock = options.clock;
    this.#timer = options.timer;
    this.#pacer = new CatchUpPacer(options.catchUpSpeed);
    this.#anchorDts = options.replayDts;
    this.#anchorMs = options.clock();
    this.#lastDts = options.replayDts ?? NaN;
  }

  /** {@linkcode PlaySink}: take the batch; wait when too much of it is not due yet. */
  write(frames: readonly MediaFrame[], count: number): void | Promise<void> {
    if (this.#stopped) return;
    const queue = this.#queue;
    if (this.#head >= MAX_QUEUED) {
      // Sent frames make room: the queue never grows past what waits.
      queue.copyWithin(0, this.#head);
      queue.length -= this.#head;
      this.#head = 0;
    }
    for (let i = 0; i < count; i++) queue.push(frames[i]);
    if (!this.#held) this.#sendDue();
    if (queue.length - this.#head < MAX_QUEUED) return;
    return this.sent();
  }

  /** Settles once every frame taken has been sent (or the reader stopped). */
  sent(): Promise<void> {
    if (this.#head === this.#queue.length || this.#stopped) return Promise.resolve();
    this.#emptied ??= Promise.withResolvers();
    return this.#emptied.promise;
  }

  /** Send nothing more (the connection closed). */
  stop(): void {
    this.#stopped = true;
    this.#queue.length = this.#head = 0;
    this.#settle();
  }

  /** Send the queued frames that are due; hold the first that is not. */
  #sendDue(): void {
    const queue = this.#queue;
    while (this.#head < queue.length) {
      const frame = queue[this.#head];
      const now = this.#clock();
      const hold = frame.flags & FrameFlags.CONFIG ? 0 : this.#holdMs(frame, now);
      if (hold >= 1) {
        // What is buffered goes now rather than with the frame after the wait.
        this.#sender.flush(now);
        this.#held = true;
        this.#timer.at(now + hold, this.#wake);
        return;
      }
      this.#send(frame, now);
    }
    queue.length = this.#head = 0;
    this.#settle();
  }

  #wake = (): void => {
    if (this.#stopped) return;
    this.#held = false;
    this.#send(this.#queue[this.#head], this.#clock());
    this.#sendDue();
  };

  #send(frame: MediaFrame, now: number): void {
    this.#queue[this.#head++] = undefined!;
    const bytes = this.#ts.bytes(frame);
    if (bytes.length === 0) return;
    if (!this.#opened) {
      // A reader's only bytes of its own: the tables, when its first packets carry none.
      this.#opened = true;
      const tables = startsWithPat(bytes) ? undefined : this.#ts.tables();
      if (tables) this.#sender.write(tables, now);
    }
    this.#sender.write(bytes, now);
  }

  #settle(): void {
    const emptied = this.#emptied;
    this.#emptied = undefined;
    emptied?.resolve();
  }

  /**
   * How long to hold media `frame`, taken now: until its time on the stream's clock, or
   * behind the live edge (the replay, then what came meanwhile), the pacer's schedule.
   */
  #holdMs(frame: MediaFrame, now: number): number {
    const jumped = Math.abs(frame.dts - this.#lastDts) > TIMESTAMP_JUMP;
    this.#lastDts = frame.dts;
    if (this.#anchorDts === undefined || jumped || frame.flags & FrameFlags.DISCONTINUITY) {
      this.#anchorDts = frame.dts;
      this.#anchorMs = now;
    }
    let due = this.#anchorMs + (frame.dts - this.#anchorDts) / 90;
    if (due > now + MAX_AHEAD_MS) {
      this.#anchorDts = frame.dts;
      this.#anchorMs = due = now;
    }
    return Math.max(due - now, this.#pacer.delayMs(frame, now));
  }
}

/** Whether `bytes` open on a PAT packet (PID 0, payload unit start). */
function startsWithPat(bytes: Uint8Array): boolean {
  return bytes[0] === 0x47 && (bytes[1] & 0x5f) === 0x40 && bytes[2] === 0;
}
