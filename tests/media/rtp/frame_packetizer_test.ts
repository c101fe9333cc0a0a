/** The shared frame packetizer: packets made once per frame, in order, parameter sets, time. */

import assert from "node:assert/strict";
import { FrameFlags, type MediaFrame } from "../../../mod.ts";
import {
  H264Depacketizer,
  RtpFramePacketizer,
  RtpPacket,
  RtpTimeOrigin,
} from "../../../media/rtp/mod.ts";
import { buildAvcConfig } from "../../../media/codec/h264.ts";
import { au, hex } from "./_util.ts";

const SPS = Uint8Array.of(0x67, 0x42, 0xc0, 0x1e, 0xda, 0x05, 0x07, 0xe4);
const PPS = Uint8Array.of(0x68, 0xce, 0x3c, 0x80);

function video(dts: number, flags: number, data: Uint8Array): MediaFrame {
  return { track: 0, kind: "video", codec: "h264", pts: dts + 3000, dts, flags, data };
}

function slice(type: number, size: number): Uint8Array {
  const nal = new Uint8Array(size).fill(0x22);
  nal[0] = type;
  return nal;
}

function h264(origin = new RtpTimeOrigin()): RtpFramePacketizer {
  return new RtpFramePacketizer(
    { codec: "h264", payloadType: 96, clockRate: 90000 },
    { maxPayload: 1000, origin, ssrc: 0x1234, initialSequence: 65534, initialTimestamp: 100 },
  );
}

Deno.test("frame packetizer: a frame's packets are made once, sequences follow across frames and wrap", () => {
  const p = h264();
  const key = video(9000, FrameFlags.KEYFRAME, au(slice(0x65, 2500)));
  const next = video(12000, 0, au(slice(0x41, 300)));
  const first = p.packets(key)!;
  assert.equal(p.packets(key), first, "the same packets for every viewer");
  assert.equal(first.packets.length, 3, "FU-A fragments of 1000-byte payloads");
  assert.equal(first.sequence, 65534);
  const second = p.packets(next)!;
  assert.equal(second.sequence, 1, "65534, 65535, 0, then 1");
  const rtp = new RtpPacket();
  const seqs = [...first.packets, ...second.packets].map((b) => rtp.parse(b).sequence);
  assert.deepEqual(seqs, [65534, 65535, 0, 1]);
  assert.equal(rtp.parse(first.packets[0]).ssrc, 0x1234);
  assert.equal(first.timestamp, 100 + 3000, "the origin is the first frame's decode time");
  assert.equal(second.timestamp, 100 + 3000 + 3000);
  assert.equal(first.bytes.length, first.packets.reduce((n, b) => n + b.length, 0));
  assert.equal(first.payloadOctets, first.bytes.length - 12 * 3);
  assert.deepEqual(
    first.packets.map((b) => rtp.parse(b).marker),
    [false, false, true],
    "the marker on the access unit's last packet",
  );
});

Deno.test("frame packetizer: parameter sets from the config go before a keyframe that lacks them", () => {
  const p = h264();
  const config: MediaFrame = {
    ...video(0, FrameFlags.CONFIG, buildAvcConfig({ sps: [SPS], pps: [PPS] })),
    pts: 0,
  };
  assert.equal(p.packets(config), undefined, "a config has no packets");
  const out: Uint8Array[] = [];
  const depacketizer = new H264Depacketizer((_t, data) => out.push(data));
  const rtp = new RtpPacket();
  const key = au(slice(0x65, 40));
  for (const b of p.packets(video(0, FrameFlags.KEYFRAME, key))!.packets) {
    depacketizer.push(rtp.parse(b));
  }
  const withSets = au(SPS, PPS, slice(0x65, 40));
  assert.deepEqual(out.map(hex), [hex(withSets)]);
  const inline = au(SPS, PPS, slice(0x65, 40));
  for (const b of p.packets(video(3000, FrameFlags.KEYFRAME, inline))!.packets) {
    depacketizer.push(rtp.parse(b));
  }
  assert.equal(hex(out[1]), hex(inline), "a keyframe with its own SPS gets no second copy");
});

Deno.test("frame packetizer: a stale frame (older than one packetized) gets none; sequences only go forward", () => {
  const p = h264();
  const old = video(0, FrameFlags.KEYFRAME, au(slice(0x65, 50)));
  const newer = video(90000, FrameFlags.KEYFRAME, au(slice(0x65, 50)));
  const made = p.packets(newer)!;
  assert.equal(p.packets(old), undefined);
  assert.equal(p.nextSequence, (made.sequence + 1) & 0xffff);
  const other: MediaFrame = { ...newer, codec: "h265", dts: 93000 };
  assert.equal(p.packets(other), undefined, "another codec is not this track's");
});

Deno.test("frame packetizer: tracks on one origin share the RTP time zero; AAC and Opus", () => {
  const origin = new RtpTimeOrigin();
  origin.ticks = 90000;
  const aac = new RtpFramePacketizer(
    { codec: "aac", payloadType: 98, clockRate: 48000 },
    { maxPayload: 1000, origin, initialTimestamp: 0 },
  );
  const opus = new RtpFramePacketizer(
    { codec: "opus", payloadType: 99, clockRate: 48000 },
    { maxPayload: 1000, origin, initialTimestamp: 5 },
  );
  const audio = (codec: "aac" | "opus", dts: number): MediaFrame => ({
    track: 1,
    kind: "audio",
    codec,
    pts: dts,
    dts,
    flags: 0,
    data: new Uint8Array(100),
  });
  assert.equal(aac.packets(audio("aac", 90000 + 1800))!.timestamp, 960);
  const o = opus.packets(audio("opus", 90000 + 3600))!;
  assert.equal(o.timestamp, 5 + 1920);
  assert.equal(o.packets.length, 1);
  assert.equal(o.payloadOctets, 100);
  assert.equal(aac.packets(audio("aac", 200000))!.packets[0].length, 12 + 4 + 100, "AU header");
  assert.equal(aac.packets({ ...audio("aac", 300000), data: new Uint8Array(9000) }), undefined);
});
