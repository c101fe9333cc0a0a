import assert from "node:assert/strict";
import { FrameFlags, type MediaFrame, Registry } from "../../../mod.ts";
import { IngestTimeline, IngestTrack } from "../../../ingest/rtsp/_ingest.ts";
import { trackFormat } from "../../../ingest/rtsp/_formats.ts";
import { parseSdp, writeSenderReport } from "../../../media/rtp/mod.ts";
import { rtpBytes, unhex } from "../../media/rtp/_util.ts";

const SDP = [
  "v=0",
  "m=video 0 RTP/AVP 96",
  "a=rtpmap:96 H264/90000",
  "a=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z0LAHtoFB+Q=,aM48gA==",
  "m=audio 0 RTP/AVP 97",
  "a=rtpmap:97 MPEG4-GENERIC/48000/2",
  "a=fmtp:97 mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1190",
  "",
].join("\r\n");

function counters() {
  return {
    rtpPacketsReceived: 0,
    rtpPacketsDropped: 0,
    rtcpPacketsReceived: 0,
    rtcpPacketsDropped: 0,
    framesPublished: 0,
  };
}

function sr(rtp: number, ntpSeconds: number): Uint8Array {
  const out = new Uint8Array(28);
  writeSenderReport(out, 0, {
    ssrc: 1,
    ntpSeconds,
    rtpTimestamp: rtp,
    packetCount: 0,
    octetCount: 0,
  });
  return out;
}

/** A publish of one video and one audio track whose RTP clocks start at unrelated values. */
function setup(now: () => number) {
  const registry = new Registry();
  const handle = registry.startPublish("live", "t");
  const [video, audio] = parseSdp(SDP).media.map(trackFormat);
  assert.ok(typeof video !== "string" && typeof audio !== "string");
  const c = counters();
  const timeline = new IngestTimeline(handle, [90000, 48000], c, now);
  const v = new IngestTrack(video, 0, timeline, c);
  const a = new IngestTrack(audio, 1, timeline, c);
  const frames: MediaFrame[] = [];
  const reading = (async () => {
    for await (const f of handle.subscribe()) frames.push(f);
  })();
  return { registry, handle, timeline, v, a, frames, reading, c };
}

const IDR = unhex("65 88 84 00 10");
const AAC_AU = (n: number) =>
  unhex(`0010 ${(n << 3).toString(16).padStart(4, "0")} ${"21".repeat(n)}`);

Deno.test("ingest: sender reports put audio and video on one timeline", async () => {
  const t = setup(() => 0);
  // video RTP 1_000_000 and audio RTP 5_000 both sampled at NTP 100.0 s; audio starts 20 ms
  // (960 samples) after video in wall-clock terms
  t.v.rtcp(sr(1_000_000, 100));
  t.a.rtcp(sr(5_000, 100));
  t.v.rtp(rtpBytes(1, 1_000_000, true, IDR, 96));
  t.a.rtp(rtpBytes(1, 5_960, true, AAC_AU(3), 97));
  t.v.rtp(rtpBytes(2, 1_003_600, true, unhex("41 9a 00"), 96));
  t.a.rtp(rtpBytes(2, 6_984, true, AAC_AU(3), 97));
  t.registry.endPublish(t.handle);
  await t.reading;
  const media = t.frames.filter((f) => !(f.flags & FrameFlags.CONFIG));
  assert.deepEqual(media.map((f) => [f.kind, f.pts]), [
    ["video", 0],
    ["audio", 1800], // 960 samples at 48 kHz = 20 ms
    ["video", 3600],
    ["audio", 3720], // 1984 samples
  ]);
  assert.equal(t.c.framesPublished, 6);
});

Deno.test("ingest: without sender reports, tracks are aligned by arrival after a wait", async () => {
  let now = 0;
  const t = setup(() => now);
  t.v.rtp(rtpBytes(1, 777, true, IDR, 96));
  now = 40;
  t.a.rtp(rtpBytes(1, 123_456, true, AAC_AU(3), 97)); // arrived 40 ms after the video
  assert.equal(t.frames.length, 0, "held while waiting for sender reports");
  now = 1100;
  t.v.rtp(rtpBytes(2, 777 + 90_000, true, unhex("41 9a 00"), 96));
  await new Promise((r) => setTimeout(r, 0));
  t.registry.endPublish(t.handle);
  await t.reading;
  const media = t.frames.filter((f) => !(f.flags & FrameFlags.CONFIG));
  assert.deepEqual(media.map((f) => [f.kind, f.pts]), [
    ["video", 0],
    ["audio", 3600], // 40 ms
    ["video", 90000],
  ]);
});

Deno.test("ingest: RTP timestamps unwrap past 2^32", async () => {
  const t = setup(() => 0);
  t.v.rtcp(sr(0xffff_f000, 1));
  t.a.rtcp(sr(0, 1));
  t.a.rtp(rtpBytes(1, 0, true, AAC_AU(3), 97));
  for (let i = 0; i < 4; i++) {
    t.v.rtp(rtpBytes(i, (0xffff_f000 + i * 3000) >>> 0, true, i ? unhex("41 9a") : IDR, 96));
  }
  t.registry.endPublish(t.handle);
  await t.reading;
  const video = t.frames.filter((f) => f.kind === "video" && !(f.flags & FrameFlags.CONFIG));
  assert.deepEqual(video.map((f) => f.pts - video[0].pts), [0, 3000, 6000, 9000]);
});

Deno.test("ingest: video before the first keyframe and malformed packets are dropped", async () => {
  const t = setup(() => 0);
  t.v.rtcp(sr(0, 1));
  t.a.rtcp(sr(0, 1));
  t.v.rtcp(unhex("80c8 0009 00")); // malformed RTCP
  t.v.rtp(unhex("80 60 00")); // not RTP
  t.v.rtp(rtpBytes(1, 0, true, IDR, 111)); // another payload type
  t.v.rtp(rtpBytes(2, 0, true, unhex("41 9a"), 96)); // not a keyframe yet
  t.v.rtp(rtpBytes(3, 3000, true, IDR, 96));
  assert.equal(t.c.rtcpPacketsDropped, 1);
  assert.equal(t.c.rtpPacketsDropped, 2);
  assert.equal(t.v.dropped, 1);
  t.registry.endPublish(t.handle);
  await t.reading;
});
