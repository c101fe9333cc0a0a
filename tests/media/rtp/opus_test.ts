import assert from "node:assert/strict";
import {
  OpusDepacketizer,
  opusFmtp,
  opusHeadFromFmtp,
  packetizeOpus,
} from "../../../media/rtp/mod.ts";
import { parseOpusHead } from "../../../media/codec/opus.ts";
import { Collect, hex, rtp, unhex } from "./_util.ts";

Deno.test("rtp opus: one packet per RTP payload, TOC checked", () => {
  const sink = new Collect();
  packetizeOpus(unhex("fc 01 02"), sink);
  assert.deepEqual(sink.packets.map((p) => [p.marker, hex(p.payload)]), [[false, "fc0102"]]);
  const got: [number, string][] = [];
  const d = new OpusDepacketizer((ts, data) => got.push([ts, hex(data)]));
  d.push(rtp(1, 960, false, unhex("fc0102"), 111));
  d.push(rtp(2, 1920, false, new Uint8Array(), 111)); // empty
  d.push(rtp(3, 2880, false, unhex("ff 3f"), 111)); // code 3, 63 frames of 20 ms: over 120 ms
  assert.deepEqual(got, [[960, "fc0102"]]);
  assert.equal(d.dropped, 2);
});

Deno.test("rtp opus: sprop-stereo and the OpusHead", () => {
  assert.equal(parseOpusHead(opusHeadFromFmtp({})).channels, 2);
  assert.equal(parseOpusHead(opusHeadFromFmtp({ "sprop-stereo": "0" })).channels, 1);
  assert.equal(opusFmtp(opusHeadFromFmtp({ "sprop-stereo": "0" })), "sprop-stereo=0");
  assert.equal(opusFmtp(opusHeadFromFmtp({ "sprop-stereo": "1" })), "sprop-stereo=1");
});
