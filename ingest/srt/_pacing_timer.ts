/**
 * Wake-ups for paced readers: every reader held until the same millisecond is woken by one
 * timer, so a listener's readers cost one timer per distinct due millisecond rather than
 * one timer (and one promise) per reader and frame.
 */

/** Wakes callbacks at their due times, one timer per due millisecond. */
export class PacingTimer {
  readonly #clock: () => number;
  /** Callbacks by due millisecond (an integer on {@linkcode PacingTimer}'s clock). */
  readonly #due = new Map<number, (() => void)[]>();

  /** Due times are on `clock` (monotonic milliseconds). */
  constructor(clock: () => number) {
    this.#clock = clock;
  }

  /** Call `wake` once, at `dueMs` or within the millisecond after. */
  at(dueMs: number, wake: () => void): void {
    const ms = Math.ceil(dueMs);
    const waiting = this.#due.get(ms);
    if (waiting !== undefined) {
      waiting.push(wake);
      return;
    }
    this.#due.set(ms, [wake]);
    setTimeout(() => this.#fire(ms), Math.max(0, ms - this.#clock()));
  }

  #fire(ms: number): void {
    const waiting = this.#due.get(ms)!;
    this.#due.delete(ms);
    for (const wake of waiting) wake();
  }
}
