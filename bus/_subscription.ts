/**
 * The stream behind {@linkcode Subscription}: a `ReadableStream` with a high-water mark of
 * zero over a {@linkcode RingCursor}, and the reader that reads the ring directly.
 */

import type { MediaFrame } from "./frame.ts";
import { type CursorHooks, type ReplayPlan, RingCursor } from "./_cursor.ts";
import type { Subscription } from "./stream.ts";

/**
 * A subscription. Everything standard (`pipeTo`, `tee`, a BYOB request, `cancel`) goes
 * through the stream's pull, which hands the reader the cursor's next frame and holds no
 * queue. `getReader()` and async iteration get a {@linkcode RingReader}, which skips the
 * pull machinery while a frame is ready.
 */
export class RingSubscription extends ReadableStream<MediaFrame> implements Subscription {
  #cursor: RingCursor;
  #controller: ReadableStreamDefaultController<MediaFrame>;

  constructor(hooks: CursorHooks, replay: ReplayPlan, maxLag: number) {
    const cursor = new RingCursor(hooks, replay, maxLag);
    let controller!: ReadableStreamDefaultController<MediaFrame>;
    /** Hand over the next frame if one is ready; false when the reader has to wait. */
    const deliver = (controller: ReadableStreamDefaultController<MediaFrame>): boolean => {
      const frame = cursor.next();
      if (frame !== undefined) controller.enqueue(frame);
      else if (cursor.finished) {
        cursor.release();
        controller.close();
      } else return false;
      return true;
    };
    const wait = async (controller: ReadableStreamDefaultController<MediaFrame>) => {
      cursor.waiting = true;
      try {
        do await hooks.ring.changed(); while (!cursor.released && !deliver(controller));
      } finally {
        cursor.waiting = false;
      }
    };
    super({
      start: (started) => void (controller = started),
      // Synchronous while frames are ready: an async pull would cost a promise per frame.
      pull: (controller) => deliver(controller) ? undefined : wait(controller),
      cancel: () => cursor.release(),
    }, { highWaterMark: 0 });
    this.#cursor = cursor;
    this.#controller = controller;
  }

  /** Frames this subscriber has skipped because it fell behind. */
  get dropped(): number {
    return this.#cursor.dropped;
  }

  /** Whether the subscription ended because it passed its `maxLag`. */
  get evicted(): boolean {
    return this.#cursor.evicted;
  }

  /** A reader; the default kind reads ready frames straight from the ring. */
  override getReader(options: { mode: "byob" }): ReadableStreamBYOBReader;
  override getReader(): ReadableStreamDefaultReader<MediaFrame>;
  override getReader(options?: ReadableStreamGetReaderOptions): ReadableStreamReader<MediaFrame>;
  override getReader(options?: ReadableStreamGetReaderOptions): ReadableStreamReader<MediaFrame> {
    if (options?.mode !== undefined) return super.getReader(options);
    return new RingReader(this, this.#cursor, this.#controller);
  }

  /** Iterate with a {@linkcode RingReader}; ending early cancels unless `preventCancel`. */
  override values(options: ReadableStreamIteratorOptions = {}): AsyncIterableIterator<MediaFrame> {
    return new RingIterator(this.getReader() as RingReader, options.preventCancel ?? false);
  }

  /** The same as {@linkcode RingSubscription.values}. */
  override [Symbol.asyncIterator](
    options?: ReadableStreamIteratorOptions,
  ): AsyncIterableIterator<MediaFrame> {
    return this.values(options);
  }
}

/**
 * A default reader that, while it is the only way into the stream, returns a ready frame
 * from the cursor at once instead of going through the stream's pull (a pull costs several
 * promise reactions; this costs one resolved promise). Waiting, ending, errors and release
 * are the standard reader's.
 */
class RingReader extends ReadableStreamDefaultReader<MediaFrame> {
  #cursor: RingCursor;
  /**
   * Whether ready frames may skip the stream: nothing was queued or being pulled when this
   * reader took the lock, and it still holds it. Then only this reader's own reads pull,
   * and a pull hands its frame straight to the waiting read.
   */
  #direct: boolean;
  /** Reads handed to the standard path and not settled yet: later reads must queue behind. */
  #pending = 0;
  #settle = () => void this.#pending--;

  constructor(
    stream: RingSubscription,
    cursor: RingCursor,
    controller: ReadableStreamDefaultController<MediaFrame>,
  ) {
    super(stream);
    this.#cursor = cursor;
    this.#direct = controller.desiredSize === 0 && !cursor.waiting;
  }

  /** The next frame: at once when one is ready, else when the stream has one or ends. */
  override read(): Promise<ReadableStreamReadResult<MediaFrame>> {
    const value = this.ready();
    if (value !== undefined) return Promise.resolve({ value, done: false });
    return this.#readStandard();
  }

  /** The next frame if it can be taken now, without a read; `undefined` otherwise. */
  ready(): MediaFrame | undefined {
    return this.#direct && this.#pending === 0 ? this.#cursor.next() : undefined;
  }

  #readStandard(): Promise<ReadableStreamReadResult<MediaFrame>> {
    this.#pending++;
    const read = super.read();
    read.then(this.#settle, this.#settle);
    return read;
  }

  /** Detach from the stream (pending reads reject, as the standard reader's do). */
  override releaseLock(): void {
    this.#direct = false;
    super.releaseLock();
  }
}

const ITERATION_DONE: IteratorReturnResult<undefined> = Object.freeze({
  done: true,
  value: undefined,
});

/**
 * Async iteration over a {@linkcode RingReader} with the standard iterator's behaviour: the
 * lock is released when the stream ends or fails, and `return()` (a `break` out of
 * `for await`) cancels the stream unless `preventCancel`. A ready frame costs one resolved
 * promise, as with `read()`.
 */
class RingIterator implements AsyncIterableIterator<MediaFrame> {
  #reader: RingReader;
  #preventCancel: boolean;
  #finished = false;

  constructor(reader: RingReader, preventCancel: boolean) {
    this.#reader = reader;
    this.#preventCancel = preventCancel;
  }

  next(): Promise<IteratorResult<MediaFrame, undefined>> {
    if (this.#finished) return Promise.resolve(ITERATION_DONE);
    const value = this.#reader.ready();
    if (value !== undefined) return Promise.resolve({ value, done: false });
    return this.#reader.read().then((result) => {
      if (result.done) this.#finish();
      return result.done ? ITERATION_DONE : result;
    }, (error) => {
      // A read queued behind one that ended the stream was rejected by the release.
      if (this.#finished) return ITERATION_DONE;
      this.#finish();
      throw error;
    });
  }

  async return(value?: unknown): Promise<IteratorReturnResult<unknown>> {
    if (!this.#finished) {
      this.#finished = true;
      const cancelled = this.#preventCancel ? undefined : this.#reader.cancel(value);
      this.#reader.releaseLock();
      await cancelled;
    }
    return { done: true, value };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  #finish(): void {
    this.#finished = true;
    this.#reader.releaseLock();
  }
}
