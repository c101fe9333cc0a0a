import assert from "node:assert/strict";
import { FrameRing } from "../../mod.ts";
import { videoFrame } from "../_util/frames.ts";

Deno.test("ring keeps the last `capacity` frames by sequence number", () => {
  const ring = new FrameRing(3);
  const frames = [0, 1, 2, 3, 4].map((i) => videoFrame(i));
  for (const [i, frame] of frames.entries()) assert.equal(ring.push(frame), i);
  assert.equal(ring.head, 5);
  assert.equal(ring.oldest, 2);
  assert.equal(ring.at(1), undefined, "overwritten");
  assert.equal(ring.at(2), frames[2]);
  assert.equal(ring.at(4), frames[4]);
  assert.equal(ring.at(5), undefined, "not yet written");
});

Deno.test("ring rejects a capacity that is not a positive integer", () => {
  assert.throws(() => new FrameRing(0), RangeError);
  assert.throws(() => new FrameRing(1.5), RangeError);
});

Deno.test("ring wakes every waiter once per burst and on close", async () => {
  const ring = new FrameRing(4);
  let woken = 0;
  const waiters = [ring.changed(), ring.changed()].map((p) => p.then(() => woken++));
  assert.equal(ring.changed(), ring.changed(), "waiters share one promise");
  ring.push(videoFrame(0));
  ring.push(videoFrame(1));
  await Promise.all(waiters);
  assert.equal(woken, 2);
  const closing = ring.changed();
  ring.close();
  await closing;
  assert.equal(ring.closed, true);
});
