import assert from "node:assert/strict";
import { RealTimePacer } from "../../bus/_real_time.ts";
import { FrameFlags } from "../../mod.ts";

const media = (dts: number, flags: number = FrameFlags.NONE) => ({ dts, flags });

Deno.test("real time: frames are due at the anchor's time plus their decode-time distance", () => {
  const pacer = new RealTimePacer(90_000, 1000);
  assert.equal(pacer.dueMs(media(45_000), 1000), 500, "replayed: due before now, so at once");
  assert.equal(pacer.dueMs(media(90_000), 1000), 1000);
  assert.equal(pacer.dueMs(media(99_000), 1000), 1100);
  assert.equal(pacer.dueMs(media(180_000), 1050), 2000, "a second ahead, held");
});

Deno.test("real time: without a replay the first frame anchors", () => {
  const pacer = new RealTimePacer(undefined, 0);
  assert.equal(pacer.dueMs(media(900_000), 300), 300);
  assert.equal(pacer.dueMs(media(909_000), 300), 400);
});

Deno.test("real time: a DISCONTINUITY, a jump of more than 5 s, or a frame more than 1 s ahead anchors anew", () => {
  const pacer = new RealTimePacer(0, 0);
  assert.equal(pacer.dueMs(media(3000, FrameFlags.DISCONTINUITY), 10), 10);
  assert.equal(pacer.dueMs(media(6000), 10), 10 + 100 / 3);
  assert.equal(pacer.dueMs(media(6000 + 6 * 90_000), 20), 20, "forward");
  assert.equal(pacer.dueMs(media(6000), 30), 30, "back");
  assert.equal(pacer.dueMs(media(6000 + 2 * 90_000), 40), 40, "2 s ahead: not held that long");
  assert.equal(pacer.dueMs(media(6000 + 2 * 90_000 + 9000), 40), 140, "then on the new anchor");
});
