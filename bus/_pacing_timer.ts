/**
 * Wake-ups for a stream's paced players: every player held until the same millisecond is
 * woken by one timer, so pacing costs a stream one timer per distinct due millisecond
 * rather than one timer (and one promise) per player and frame.
 */

import type { Timers } from "./_timers.ts";

/** The wake-ups due in one millisecond, and the timer that calls them. */
interface DueWakes {
  readonly id: unknown;
  readonly wakes: (() => void)[];
}

/** Wakes callbacks at their due times, one timer per due millisecond. */
export class PacingTimer {
  readonly #timers: Timers;
  /** Wake-ups by due millisecond (an integer on the timers' clock). */
  readonly #due = new Map<number, DueWakes>();

  /** Wait on `timers`, with due times on their clock. */
  constructor(timers: Timers) {
    this.#timers = timers;
  }

  /** Call `wake` once, at `dueMs` or within the millisecond after. */
  at(dueMs: number, wake: () => void): void {
    const ms = Math.ceil(dueMs);
    const due = this.#due.get(ms);
    if (due !== undefined) {
      due.wakes.push(wake);
      return;
    }
    const id = this.#timers.setTimeout(() => this.#fire(ms), Math.max(0, ms - this.#timers.now()));
    this.#due.set(ms, { id, wakes: [wake] });
  }

  /** Take back a `wake` set {@linkcode PacingTimer.at} `dueMs`; the last one stops its timer. */
  cancel(dueMs: number, wake: () => void): void {
    const ms = Math.ceil(dueMs);
    const due = this.#due.get(ms);
    const at = due?.wakes.indexOf(wake) ?? -1;
    if (at < 0) return;
    due!.wakes.splice(at, 1);
    if (due!.wakes.length > 0) return;
    this.#timers.clearTimeout(due!.id);
    this.#due.delete(ms);
  }

  #fire(ms: number): void {
    const due = this.#due.get(ms)!;
    this.#due.delete(ms);
    for (const wake of due.wakes) wake();
  }
}
