/**
 * The write side of one TCP connection: bytes go to the socket at once when no write is in
 * flight, else they wait, and everything that waited goes out in the next single write
 * (joined up to a limit). No promise is chained per write: one callback pair per socket
 * write, one promise for those who wait on the drain.
 *
 * @module
 */

/**
 * Queued entries are joined into one write up to this many bytes; an entry that does not
 * fit with the next goes out alone, uncopied.
 */
const COALESCE_LIMIT = 8 * 1024;

/** What an {@linkcode Outbox} writes to (a `Deno.Conn`). */
export interface OutboxWriter {
  /** Write some of `bytes`; resolves with how many were taken. */
  write(bytes: Uint8Array): Promise<number>;
}

/**
 * The queue of one connection's writes. A failed write calls `onFailed` (the connection
 * closes); after {@linkcode Outbox.close} nothing more is written.
 *
 * @example
 * ```ts
 * import { Outbox } from "./_outbox.ts";
 *
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: 1935 });
 * const outbox = new Outbox(conn, (error) => console.log("write failed", error));
 * outbox.send(new Uint8Array([1, 2, 3])); // written at once
 * outbox.send(new Uint8Array([4])); // waits, and goes out with what else waits
 * await outbox.whenDrained();
 * ```
 */
export class Outbox {
  readonly #writer: OutboxWriter;
  readonly #onFailed: (error: unknown) => void;
  #queued: Uint8Array[] = [];
  /** The bytes of the write in flight, undefined when idle. */
  #writing: Uint8Array | undefined;
  #drained: PromiseWithResolvers<void> | undefined;
  #closed = false;
  /**
   * While a write is in flight: when it started or last made progress (monotonic ms); a
   * peer that takes nothing for long lets this grow old.
   */
  lastProgressMs = 0;

  /** Write to `writer`; a failed write calls `onFailed` once. */
  constructor(writer: OutboxWriter, onFailed: (error: unknown) => void) {
    this.#writer = writer;
    this.#onFailed = onFailed;
  }

  /** Whether a write is in flight. */
  get writing(): boolean {
    return this.#writing !== undefined;
  }

  /**
   * Write `bytes` at once when no write is in flight, else queue them behind it. Resolves
   * (never rejects) once they were written, the write failed or the outbox closed.
   */
  send(bytes: Uint8Array): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#writing !== undefined) {
      this.#queued.push(bytes);
      return this.whenDrained();
    }
    this.lastProgressMs = performance.now();
    this.#write(bytes);
    return this.whenDrained();
  }

  /** Resolves once nothing is left to write (at once when idle or closed). */
  whenDrained(): Promise<void> {
    if (this.#writing === undefined) return Promise.resolve();
    this.#drained ??= Promise.withResolvers();
    return this.#drained.promise;
  }

  /** Drop what waits and write nothing more; who waits on the drain is settled. */
  close(): void {
    this.#closed = true;
    this.#queued.length = 0;
    this.#drain();
  }

  #write(bytes: Uint8Array): void {
    this.#writing = bytes;
    this.#writer.write(bytes).then(this.#onWritten, this.#onWriteFailed);
  }

  /** The write in flight took `n` bytes: write the rest, then what was queued meanwhile. */
  #onWritten = (n: number): void => {
    if (this.#closed) return;
    const bytes = this.#writing!;
    if (n < bytes.length) this.#write(bytes.subarray(n));
    else if (this.#queued.length > 0) this.#write(this.#takeQueued());
    else return this.#drain();
    this.lastProgressMs = performance.now();
  };

  #onWriteFailed = (error: unknown): void => {
    if (this.#closed) return;
    this.close();
    this.#onFailed(error);
  };

  /** Nothing is left to write (or nothing will be): settle who waits on that. */
  #drain(): void {
    this.#writing = undefined;
    const drained = this.#drained;
    this.#drained = undefined;
    drained?.resolve();
  }

  /**
   * The next bytes to write: as many queued entries as fit in {@linkcode COALESCE_LIMIT},
   * joined, or the first entry alone (uncopied) when it fills that by itself. Queues form
   * only while a write is in flight, so the join is made for the write rather than kept.
   */
  #takeQueued(): Uint8Array {
    const queued = this.#queued;
    const first = queued[0];
    if (queued.length === 1 || first.length + queued[1].length > COALESCE_LIMIT) {
      queued.shift();
      return first;
    }
    let total = 0;
    let taken = 0;
    for (; taken < queued.length && total + queued[taken].length <= COALESCE_LIMIT; taken++) {
      total += queued[taken].length;
    }
    const joined = new Uint8Array(total);
    for (let i = 0, o = 0; i < taken; i++) {
      joined.set(queued[i], o);
      o += queued[i].length;
    }
    queued.splice(0, taken);
    return joined;
  }
}
