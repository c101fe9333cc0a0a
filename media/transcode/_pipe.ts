/**
 * A one-way byte pipe over a `SharedArrayBuffer`: the event loop writes without waiting,
 * a worker blocked in synchronous code (ffmpeg's read loop) reads, waiting on `Atomics`.
 *
 * @module
 */

/** Header slots (Int32): total bytes written, total bytes read, closed flag. */
const WRITTEN = 0;
const READ = 1;
const CLOSED = 2;
const HEADER_BYTES = 16;

/** The shared memory of a pipe, to hand to the worker that reads it. */
export type PipeMemory = SharedArrayBuffer;

/** Make the memory of a pipe holding up to `capacity` bytes (a power of two). */
export function pipeMemory(capacity: number): PipeMemory {
  if (capacity < 16 || (capacity & (capacity - 1)) !== 0) {
    throw new RangeError(`pipe capacity ${capacity} is not a power of two`);
  }
  return new SharedArrayBuffer(HEADER_BYTES + capacity);
}

/** What both ends see of the memory: the header, the ring of bytes and its index mask. */
class PipeEnd {
  protected readonly header: Int32Array;
  protected readonly data: Uint8Array;
  protected readonly mask: number;

  /** Use `memory`. */
  constructor(memory: PipeMemory) {
    this.header = new Int32Array(memory, 0, 4);
    this.data = new Uint8Array(memory, HEADER_BYTES);
    this.mask = this.data.length - 1;
  }
}

/** The writing end: never waits; refuses what does not fit. */
export class PipeWriter extends PipeEnd {
  /** Bytes written and not read yet. */
  get buffered(): number {
    return (Atomics.load(this.header, WRITTEN) - Atomics.load(this.header, READ)) | 0;
  }

  /** Append `bytes` whole, or nothing when they do not fit; returns whether they were. */
  write(bytes: Uint8Array): boolean {
    if (Atomics.load(this.header, CLOSED)) return false;
    if (bytes.length > this.data.length - this.buffered) return false;
    const written = Atomics.load(this.header, WRITTEN);
    const at = written & this.mask;
    const first = Math.min(bytes.length, this.data.length - at);
    this.data.set(bytes.subarray(0, first), at);
    this.data.set(bytes.subarray(first), 0);
    Atomics.store(this.header, WRITTEN, (written + bytes.length) | 0);
    Atomics.notify(this.header, WRITTEN);
    return true;
  }

  /** End the pipe: the reader gets what is buffered, then the end. */
  close(): void {
    Atomics.store(this.header, CLOSED, 1);
    Atomics.notify(this.header, WRITTEN);
  }
}

/** The reading end, for a worker: blocks its thread until bytes or the end arrive. */
export class PipeReader extends PipeEnd {
  /**
   * Copy up to `into.length` bytes into `into`, waiting (blocking the thread) until some
   * are written; 0 once the pipe is closed and drained.
   */
  read(into: Uint8Array | Int8Array): number {
    for (;;) {
      const written = Atomics.load(this.header, WRITTEN);
      const read = Atomics.load(this.header, READ);
      const available = (written - read) | 0;
      if (available > 0) {
        const n = Math.min(available, into.length);
        const at = read & this.mask;
        const first = Math.min(n, this.data.length - at);
        into.set(this.data.subarray(at, at + first));
        if (n > first) into.set(this.data.subarray(0, n - first), first);
        Atomics.store(this.header, READ, (read + n) | 0);
        return n;
      }
      if (Atomics.load(this.header, CLOSED)) return 0;
      Atomics.wait(this.header, WRITTEN, written, 1000);
    }
  }
}
