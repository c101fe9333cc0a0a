import assert from "node:assert/strict";
import { CatchUpPacer } from "../../bus/_catch_up.ts";

/**
 * When a player reading a 30 fps GOP replay of `frames` frames, all available at `now`,
 * hands each over: at its due time, or at once.
 */
function schedule(pacer: CatchUpPacer, frames: number, now: number): number[] {
  const sends: number[] = [];
  for (let i = 0; i < frames; i++) {
    now = Math.max(now, pacer.dueMs({ dts: i * 3000 }, now, now));
    sends.push(now);
  }
  return sends;
}

Deno.test("catch-up: a replay goes out at `speed` times real time, the first frame at once", () => {
  const sends = schedule(new CatchUpPacer(1.5), 60, 1000);
  assert.equal(sends[0], 1000);
  for (let i = 1; i < 60; i++) {
    assert.ok(Math.abs(sends[i] - (1000 + (i * 100) / 3 / 1.5)) < 1e-9, `frame ${i}`);
  }
});

Deno.test("catch-up: interleaved frames at or before the newest time go with it", () => {
  const pacer = new CatchUpPacer(2);
  assert.equal(pacer.dueMs({ dts: 90_000 }, 0, 0), -Infinity);
  assert.equal(pacer.dueMs({ dts: 99_000 }, 0, 0), 50);
  assert.equal(
    pacer.dueMs({ dts: 95_000 }, 50, 0),
    -Infinity,
    "audio from before the newest video",
  );
  assert.equal(pacer.dueMs({ dts: 99_000 }, 50, 0), -Infinity);
  assert.equal(pacer.caughtUp, false);
});

Deno.test("catch-up: a frame that comes later than its time ends the pacing for good", () => {
  const pacer = new CatchUpPacer(1.5);
  pacer.dueMs({ dts: 0 }, 0, 0);
  assert.ok(pacer.dueMs({ dts: 3000 }, 0, 0) > 0);
  // the next frame arrives live, well after its paced time
  assert.equal(pacer.dueMs({ dts: 6000 }, 500, 500), -Infinity);
  assert.equal(pacer.caughtUp, true);
  assert.equal(pacer.dueMs({ dts: 90_000 }, 500, 500), -Infinity, "no pacing after that");
});

Deno.test("catch-up: a jump forward of more than a second's wait ends the pacing", () => {
  const pacer = new CatchUpPacer(1.5);
  pacer.dueMs({ dts: 0 }, 0, 0);
  assert.equal(pacer.dueMs({ dts: 10 * 90_000 }, 0, 0), -Infinity);
  assert.equal(pacer.caughtUp, true);
});

Deno.test("catch-up: a frame available in time but handed over late goes at once, and the pacing goes on", () => {
  const pacer = new CatchUpPacer(1.5);
  pacer.dueMs({ dts: 0 }, 0, 0);
  assert.ok(pacer.dueMs({ dts: 3000 }, 0, 0) > 0);
  // the player's timer fired 300 ms late: the frame was there at 0, in time
  assert.ok(pacer.dueMs({ dts: 6000 }, 340, 0) <= 340);
  assert.equal(pacer.caughtUp, false, "no burst of the rest of the replay");
  // the schedule stays: what is due by now goes at once, a frame due later still waits
  assert.ok(pacer.dueMs({ dts: 9000 }, 340, 0) <= 340);
  assert.equal(pacer.dueMs({ dts: 72_000 }, 340, 0), 800 / 1.5);
  // a frame that entered the stream after its paced time came live: caught up
  assert.equal(pacer.dueMs({ dts: 81_000 }, 1000, 1000), -Infinity);
  assert.equal(pacer.caughtUp, true);
});
