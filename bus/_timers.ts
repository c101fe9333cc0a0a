/**
 * The time a stream's players wait on (their pacing and coalescing delays): a monotonic
 * clock and one-shot timers on it, the platform's or a test's.
 */

import { monotonicMs } from "./_clock.ts";

/**
 * A monotonic clock and one-shot timers that count on it; injectable so tests can drive
 * the time players wait on. The clock and the timers come together: a due time read on one
 * clock and waited for on another's timers would never come.
 */
export interface Timers {
  /** Monotonic milliseconds. */
  now(): number;
  /** Call `callback` once, `delayMs` milliseconds from now; returns what cancels it. */
  setTimeout(callback: () => void, delayMs: number): unknown;
  /** Cancel the timer `setTimeout` returned `id` for (a no-op once it fired). */
  clearTimeout(id: unknown): void;
}

/** The platform's monotonic clock, `setTimeout` and `clearTimeout`. */
export const platformTimers: Timers = {
  now: monotonicMs,
  setTimeout: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimeout: (id) => clearTimeout(id as ReturnType<typeof setTimeout>),
};
