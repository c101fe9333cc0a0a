/**
 * SRT ingest keeps the kernel's contract: MPEG-TS joined mid-GOP (its SPS/PPS not seen)
 * publishes no video until the next keyframe with parameter sets, and that CONFIG first.
 */

import assert from "node:assert/strict";
import { FrameFlags, type MediaFrame, Registry } from "../../../mod.ts";
import { rejectionReason, serveSrt } from "../../../ingest/srt/mod.ts";
import { makeFixture, sine, testsrc, x264 } from "../../_util/ffmpeg.ts";
import { assertConfigFirst } from "../../_util/frames.ts";
import { LogLines } from "../../_util/log.ts";
import { within } from "../../_util/within.ts";
import { TestCaller } from "./_client.ts";
import { dataPacket } from "./_engine.ts";
import { joinedMidGop } from "../../media/ts/_helpers.ts";

const TS = 188;

Deno.test("srt ingest: MPEG-TS joined mid-GOP publishes no media before its CONFIG frame", async () => {
  const file = await makeFixture("srt-config-order.ts", [
    ...testsrc({ duration: 2 }),
    ...sine({ duration: 2 }),
    ...x264({ gop: 25 }),
    ..."-c:a aac -f mpegts".split(" "),
  ]);
  const ts = joinedMidGop(await Deno.readFile(file));
  const registry = new Registry();
  const server = await serveSrt({
    hostname: "127.0.0.1",
    port: 0,
    logger: new LogLines(),
    registry,
  });
  const caller = await TestCaller.open(server.addr.port);
  try {
    const answer = await caller.connect("publish:live/order");
    assert.equal(rejectionReason(answer.type), undefined);
    const handle = registry.get("live", "order")!;
    const frames: MediaFrame[] = [];
    const collected = (async () => {
      for await (const f of handle.subscribe()) frames.push(f);
    })();
    let seq = caller.isn;
    for (let at = 0; at < ts.length; at += 7 * TS) {
      const packet = dataPacket(seq++, 0, ts.subarray(at, Math.min(at + 7 * TS, ts.length)));
      new DataView(packet.buffer).setUint32(12, answer.socketId);
      caller.send(packet);
      if ((seq - caller.isn) % 32 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    await within(
      (async () => {
        while (!frames.some((f) => f.kind === "video" && f.flags & FrameFlags.KEYFRAME)) {
          await new Promise((r) => setTimeout(r, 20));
        }
      })(),
      5000,
      "the next keyframe",
    );
    registry.endPublish(handle);
    await collected;
    assert.ok(assertConfigFirst(frames, "srt") > 10);
    const firstVideo = frames.find((f) => f.kind === "video" && !(f.flags & FrameFlags.CONFIG));
    assert.ok(firstVideo && firstVideo.flags & FrameFlags.KEYFRAME, "video starts at a keyframe");
  } finally {
    await server.close();
    await caller.close();
  }
});
