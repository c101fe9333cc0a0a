/** A clock and timers that move only when a test says so, for `timers` options. */

import type { Timers } from "../../mod.ts";

/** A callback set on {@linkcode ManualTime.timers} and when it is due. */
interface Pending {
  readonly at: number;
  readonly callback: () => void;
}

/** Let every promise chain the callbacks started run (the ring wakes its readers in one). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

/** Monotonic milliseconds and one-shot timers on them, driven by the test. */
export class ManualTime {
  /** What the clock reads. */
  now: number;
  /** The clock, for a `clock` option. */
  readonly clock = (): number => this.now;
  /** The clock and timers on it, for a `timers` option. */
  readonly timers: Timers = {
    now: this.clock,
    setTimeout: (callback, delayMs) => {
      const id = this.#nextId++;
      this.#pending.set(id, { at: this.now + Math.max(0, delayMs), callback });
      return id;
    },
    clearTimeout: (id) => void this.#pending.delete(id as number),
  };
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;

  /** Start the clock at `now`. */
  constructor(now = 0) {
    this.now = now;
  }

  /** How many timers are set and have not fired. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Move the clock to `to`, firing each timer due by then at its own time, in order. */
  async advanceTo(to: number): Promise<void> {
    await settle(); // what was published at the time it still reads
    for (let next = this.#next(to); next !== undefined; next = this.#next(to)) {
      this.now = Math.max(this.now, next.at);
      next.callback();
      await settle();
    }
    this.now = Math.max(this.now, to);
    await settle();
  }

  /** Move the clock to `to` at once, then fire every timer due by then: all of them late. */
  async jumpTo(to: number): Promise<void> {
    this.now = to;
    await this.advanceTo(to);
  }

  /** The earliest timer due by `to`, taken off the list. */
  #next(to: number): Pending | undefined {
    let first: [number, Pending] | undefined;
    for (const entry of this.#pending) {
      if (entry[1].at <= to && (first === undefined || entry[1].at < first[1].at)) first = entry;
    }
    if (first === undefined) return undefined;
    this.#pending.delete(first[0]);
    return first[1];
  }
}
