import assert from "node:assert/strict";
import {
  AacDepacketizer,
  aacFmtp,
  AacPacketizer,
  mpeg4GenericParams,
} from "../../../media/rtp/mod.ts";
import { prng, randomBytes } from "../../_util/fuzz.ts";
import { Collect, hex, rtp, unhex } from "./_util.ts";

const HBR = { sizeLength: 13, indexLength: 3, indexDeltaLength: 3, config: unhex("1190") };

function aacUnits(payloads: [boolean, string, number?][], params = HBR) {
  const units: [number, string][] = [];
  const d = new AacDepacketizer(params, 1024, (ts, data) => units.push([ts, hex(data)]));
  payloads.forEach(([marker, h, ts], i) => d.push(rtp(i, ts ?? 48000, marker, unhex(h), 97)));
  return { units, d };
}

// RFC 3640 3.2/3.3.6: AU-headers-length in bits, then per AU a 13-bit AU-size and a
// 3-bit AU-Index (first) or AU-Index-delta (others), then the AUs back to back.
Deno.test("rtp aac: golden AAC-hbr packet with two AUs", () => {
  const { units, d } = aacUnits([[true, "0020 0010 0008 aabb cc"]]);
  assert.equal(d.dropped, 0);
  assert.deepEqual(units, [[48000, "aabb"], [49024, "cc"]]);
});

Deno.test("rtp aac: packetizer writes one AU per packet, golden bytes", () => {
  const sink = new Collect();
  new AacPacketizer(1200).packetize(unhex("21 00 49 90"), sink);
  assert.deepEqual(sink.packets.map((p) => [p.marker, hex(p.payload)]), [
    [true, "0010" + "0020" + "21004990"],
  ]);
});

Deno.test("rtp aac: a fragmented AU is written and reassembled (RFC 3640 3.2.3.1)", () => {
  const frame = Uint8Array.from({ length: 20 }, (_, i) => i);
  const sink = new Collect();
  new AacPacketizer(16).packetize(frame, sink);
  assert.deepEqual(sink.packets.map((p) => [p.marker, hex(p.payload)]), [
    [false, "0010 00a0 000102030405060708090a0b".replace(/ /g, "")],
    [true, "0010 00a0 0c0d0e0f10111213".replace(/ /g, "")],
  ]);
  const { units, d } = aacUnits(sink.packets.map((p) => [p.marker, hex(p.payload)]));
  assert.equal(d.dropped, 0);
  assert.deepEqual(units, [[48000, hex(frame)]]);
});

Deno.test("rtp aac: random AUs round trip through one-AU packets", () => {
  const rand = prng(3640);
  const frames = Array.from(
    { length: 300 },
    () => randomBytes(rand, 1 + Math.floor(rand() * 3000)),
  );
  const packetizer = new AacPacketizer(1400);
  const payloads: [boolean, string, number][] = [];
  frames.forEach((frame, i) => {
    const sink = new Collect();
    packetizer.packetize(frame, sink);
    for (const p of sink.packets) payloads.push([p.marker, hex(p.payload), i * 1024]);
  });
  const { units, d } = aacUnits(payloads);
  assert.equal(d.dropped, 0);
  assert.deepEqual(units, frames.map((f, i) => [i * 1024, hex(f)]));
});

Deno.test("rtp aac: bad payloads are dropped and counted", () => {
  const { units, d } = aacUnits([
    [true, "00"], // no room for AU-headers-length
    [true, "0000 aa"], // zero-length AU headers
    [true, "0040 0010"], // AU headers overrun the payload
    [true, "0020 0010 0010 aabb"], // AUs overrun the payload
    [false, "0010 00a0 0001"], // fragment start (20-byte AU) ...
    [true, "0010 00a0 02", 50000], // ... a new timestamp drops it and starts another
    [false, "0010 00a0 " + "00".repeat(10), 60000], // which this one drops; a start ...
    [true, "0010 00a0 " + "00".repeat(15), 60000], // ... whose fragments overrun the AU
  ]);
  assert.deepEqual(units, []);
  assert.equal(d.dropped, 7);
  assert.throws(
    () => new AacPacketizer(1400).packetize(new Uint8Array(9000), new Collect()),
    RangeError,
  );
});

Deno.test("rtp aac: bounded fuzz of the depacketizer never throws", () => {
  const rand = prng(97);
  const d = new AacDepacketizer(HBR, 1024, () => {});
  for (let i = 0; i < 20000; i++) {
    const payload = randomBytes(rand, Math.floor(rand() * 48));
    if (payload.length > 1 && rand() < 0.5) payload[0] = 0; // plausible header lengths
    d.push(rtp(i & 0xffff, i * 1024, rand() < 0.8, payload, 97));
  }
  assert.ok(d.dropped > 0);
});

Deno.test("rtp aac: fmtp parameters", () => {
  const fmtp =
    "profile-level-id=1; mode=AAC-hbr; sizelength=13; indexlength=3; indexdeltalength=3; config=1190";
  assert.equal(aacFmtp(unhex("1190")), fmtp);
  const params = Object.fromEntries(fmtp.split("; ").map((p) => p.split("=")));
  assert.deepEqual(mpeg4GenericParams(params), HBR);
  assert.equal(mpeg4GenericParams({ ...params, config: "" }), undefined);
  assert.equal(mpeg4GenericParams({ ...params, config: "11x0" }), undefined);
  assert.equal(mpeg4GenericParams({ ...params, sizelength: "" }), undefined);
  assert.equal(mpeg4GenericParams({ ...params, ctsdeltalength: "16" }), undefined);
  assert.equal(mpeg4GenericParams({ ...params, sizelength: "99" }), undefined);
});
