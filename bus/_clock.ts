/**
 * The kernel's monotonic clock: milliseconds that never jump with wall-clock
 * changes, for QoS windows, idle reaping and `lastFrameMs`.
 */

/** A source of monotonic milliseconds; injectable so tests can drive time. */
export type MonotonicClock = () => number;

let turnTime: number | undefined;
const endTurn = () => (turnTime = undefined);

/**
 * The process's monotonic clock (`performance.now()`), read once per turn of the event
 * loop: a burst of frames published in one synchronous run shares one reading, which
 * keeps the clock off the publishing hot path (a reading costs more than a publish).
 */
export const monotonicMs: MonotonicClock = () =>
  turnTime ??= (queueMicrotask(endTurn), performance.now());
