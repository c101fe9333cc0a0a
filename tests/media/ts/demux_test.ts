import assert from "node:assert/strict";
import { FrameFlags, type MediaFrame } from "../../../mod.ts";
import { TsDecoder, TsDemuxer } from "../../../media/ts/mod.ts";
import { FlvWriter } from "../../../media/flv/mod.ts";
import { parseAudioSpecificConfig } from "../../../media/codec/aac.ts";
import { parseAvcConfig, parseH264Sps } from "../../../media/codec/h264.ts";
import { parseH265Sps, parseHevcConfig } from "../../../media/codec/h265.ts";
import { parseOpusHead } from "../../../media/codec/opus.ts";
import { splitLengthPrefixed } from "../../../media/codec/nal.ts";
import { probePackets, type ProbeStream, tempPath } from "../../_util/ffmpeg.ts";
import { concat } from "../../_util/bytes.ts";
import { readAll } from "../../_util/frames.ts";
import { prng } from "../../_util/fuzz.ts";
import {
  demux,
  fixtures,
  frameTimings,
  maxTimingError,
  muxChunks,
  packets,
  probeTimings,
  type Timing,
} from "./_helpers.ts";
import { testsWith } from "../../_util/tools.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg", "ffprobe"] });

const WRAP = 2 ** 33;

function streamOf(streams: ProbeStream[], type: string): ProbeStream {
  const s = streams.find((s) => s.codecType === type);
  assert.ok(s, `ffprobe found no ${type} stream`);
  return s;
}

function configOf(frames: MediaFrame[], track: number): MediaFrame {
  const f = frames.find((f) => f.track === track);
  assert.ok(f && f.flags & FrameFlags.CONFIG, `track ${track} does not start with CONFIG`);
  return f;
}

/** Our frames of `track` against ffprobe's packets; `tolerance` in 90 kHz ticks. */
function assertTimings(ours: Timing[], probe: ProbeStream, tolerance: number, keys: boolean) {
  assert.equal(ours.length, probe.packets.length, `${probe.codecName}: frame count`);
  const err = maxTimingError(ours, probeTimings(probe), keys);
  assert.ok(err <= tolerance, `${probe.codecName}: timestamps off by up to ${err} ticks`);
}

function assertWellFormedVideo(frames: MediaFrame[]) {
  for (const f of frames) {
    if (f.kind !== "video" || f.flags & FrameFlags.CONFIG) continue;
    for (const nal of splitLengthPrefixed(f.data)) {
      const type = f.codec === "h264" ? nal[0] & 0x1f : (nal[0] >> 1) & 0x3f;
      assert.notEqual(type, f.codec === "h264" ? 9 : 35, "AUD left in the access unit");
    }
  }
}

test.ffmpeg("demux H.264 (B-frames) + AAC 44.1 kHz agrees with ffprobe", async () => {
  const path = await fixtures.h264Aac44();
  const { frames, stats } = demux(await Deno.readFile(path));
  const probe = await probePackets(path);
  const video = streamOf(probe, "video");
  const audio = streamOf(probe, "audio");
  assertTimings(frameTimings(frames, 0), video, 0, true);
  // ffprobe derives the pts of AAC frames packed after the first in a PES by adding rounded
  // 2089.8-tick durations; ours are computed exactly from the PES pts: at most 1 tick apart.
  assertTimings(frameTimings(frames, 1), audio, 1, false);
  assert.ok(frameTimings(frames, 0).some((t) => t.pts !== t.dts), "fixture has no B-frames");

  const avc = parseAvcConfig(configOf(frames, 0).data);
  const sps = parseH264Sps(avc.sps[0]);
  assert.deepEqual([sps.width, sps.height], [video.info.width, video.info.height]);
  const asc = parseAudioSpecificConfig(configOf(frames, 1).data);
  assert.equal(asc.sampleRate, Number(audio.info.sample_rate));
  assert.equal(asc.channelConfiguration, audio.info.channels);
  assertWellFormedVideo(frames);
  assert.equal(stats.garbageBytes, 0);
  assert.equal(stats.continuityErrors, 0);
  assert.equal(stats.droppedPes, 0);
});

test.ffmpeg("demux H.265 + AAC 48 kHz agrees with ffprobe exactly", async () => {
  const path = await fixtures.h265Aac48();
  const { frames } = demux(await Deno.readFile(path));
  const probe = await probePackets(path);
  const video = streamOf(probe, "video");
  assertTimings(frameTimings(frames, 0), video, 0, true);
  assertTimings(frameTimings(frames, 1), streamOf(probe, "audio"), 0, false);
  const hvc = parseHevcConfig(configOf(frames, 0).data);
  const sps = parseH265Sps(hvc.sps[0]);
  assert.deepEqual([sps.width, sps.height], [video.info.width, video.info.height]);
  assert.equal(hvc.vps.length, 1);
  assertWellFormedVideo(frames);
});

test.ffmpeg("demux audio-only AAC and video-only H.264", async () => {
  for (const [fixture, kind] of [[fixtures.aac44, "audio"], [fixtures.h264, "video"]] as const) {
    const path = await fixture();
    const { frames } = demux(await Deno.readFile(path));
    const probe = await probePackets(path);
    assert.equal(probe.length, 1);
    const track = kind === "video" ? 0 : 1;
    assert.ok(frames.every((f) => f.kind === kind && f.track === track));
    assertTimings(
      frameTimings(frames, track),
      probe[0],
      kind === "audio" ? 1 : 0,
      kind === "video",
    );
  }
});

test.ffmpeg("demux Opus: control headers stripped, OpusHead CONFIG, sample-exact timestamps", async () => {
  const path = await fixtures.opus();
  const { frames } = demux(await Deno.readFile(path));
  const probe = await probePackets(path);
  const audio = streamOf(probe, "audio");
  assertTimings(frameTimings(frames, 1), audio, 0, false);
  const head = parseOpusHead(configOf(frames, 1).data);
  assert.equal(head.channels, audio.info.channels);
  assert.equal(head.preSkip, 312, "the first start trim is the pre-skip");
  const sizes = audio.packets.map((p) => p.size);
  const ours = frames.filter((f) => !(f.flags & FrameFlags.CONFIG)).map((f) => f.data.length);
  assert.deepEqual(ours, sizes);
});

for (
  const [name, fixture] of [
    ["H.264 (B-frames) + AAC 44.1 kHz", fixtures.h264Aac44],
    ["AAC only", fixtures.aac44],
    ["H.264 only", fixtures.h264],
  ] as const
) {
  test.ffmpeg(`TS → TsDemuxer → FlvWriter (${name}): ffprobe agrees with the TS`, async () => {
    const input = await fixture();
    const file = await Deno.open(input);
    const flvChunks = await readAll(
      file.readable.pipeThrough(new TsDemuxer()).pipeThrough(new FlvWriter()),
      10_000,
    );
    const flv = await tempPath(`demux-${name.replace(/\W+/g, "-")}.flv`);
    await Deno.writeFile(flv, concat(flvChunks));
    const ts = await probePackets(input);
    const out = await probePackets(flv);
    for (const type of ["video", "audio"]) {
      const a = ts.find((s) => s.codecType === type);
      const b = out.find((s) => s.codecType === type);
      assert.equal(b === undefined, a === undefined, `${type} stream presence`);
      if (!a || !b) continue;
      assert.equal(b.packets.length, a.packets.length, `${type} packet count`);
      // FLV keeps milliseconds: within 1 ms (90 ticks) of the TS timestamps.
      const err = maxTimingError(probeTimings(b), probeTimings(a), type === "video");
      assert.ok(err <= 90, `${type}: off by ${err} ticks`);
    }
  });
}

test.ffmpeg("demux is independent of chunk boundaries (TsDecoder and TsDemuxer)", async () => {
  const bytes = await Deno.readFile(await fixtures.h264Aac44());
  const whole = demux(bytes).frames;
  const rand = prng(42);
  const tiny = demux(bytes, { chunkSize: () => 1 + ((rand() * 7) | 0) }).frames;
  const odd = demux(bytes, { chunkSize: () => 1 + ((rand() * 3000) | 0) }).frames;
  assert.deepEqual(tiny, whole);
  assert.deepEqual(odd, whole);

  const chunks: Uint8Array[] = [];
  for (let pos = 0; pos < bytes.length;) {
    const n = 1 + ((rand() * 1000) | 0);
    chunks.push(bytes.slice(pos, pos + n));
    pos += n;
  }
  const streamed = await readAll(ReadableStream.from(chunks).pipeThrough(new TsDemuxer()));
  assert.deepEqual(streamed, whole);
});

test.ffmpeg("demux unwraps 33-bit timestamps into a monotonic timeline", async () => {
  const path = await fixtures.wrap();
  const { frames } = demux(await Deno.readFile(path));
  for (const track of [0, 1]) {
    const dts = frameTimings(frames, track).map((t) => t.dts);
    assert.ok(dts[0] < WRAP && dts[dts.length - 1] > WRAP, `track ${track} does not cross 2^33`);
    for (let i = 1; i < dts.length; i++) {
      assert.ok(dts[i] > dts[i - 1], `dts not monotonic at ${i}`);
    }
  }
  // ffprobe shows the same timeline shifted down by 2^33 (negative before the wrap).
  const probe = await probePackets(path);
  const video = probeTimings(streamOf(probe, "video"));
  const ours = frameTimings(frames, 0).map((t) => ({ ...t, pts: t.pts - WRAP, dts: t.dts - WRAP }));
  assert.equal(maxTimingError(ours, video, true), 0);
});

test.ffmpeg("demux skips garbage between packets and counts it", async () => {
  const bytes = await Deno.readFile(await fixtures.h264Aac44());
  const clean = demux(bytes).frames;
  const rand = prng(3);
  const parts: Uint8Array[] = [];
  let garbage = 0;
  for (let pos = 0; pos < bytes.length; pos += 188 * 5) {
    // Random junk; a third of it starts with a sync byte right where a packet would start.
    const junk = Uint8Array.from({ length: 1 + ((rand() * 400) | 0) }, () => (rand() * 256) | 0);
    if (rand() < 0.3) junk[0] = 0x47;
    parts.push(junk, bytes.subarray(pos, pos + 188 * 5));
    garbage += junk.length;
  }
  const { frames, stats } = demux(concat(parts), { chunkSize: () => 1 + ((rand() * 500) | 0) });
  assert.deepEqual(frames, clean);
  assert.equal(stats.garbageBytes, garbage);
  assert.equal(stats.continuityErrors, 0);
});

test.ffmpeg("a lost packet drops the damaged PES and flags the next frame DISCONTINUITY", async () => {
  const bytes = await Deno.readFile(await fixtures.h264Aac44());
  const clean = demux(bytes).frames;
  // Remove a video packet in the middle of a PES (no payload_unit_start) past the first GOP.
  let victim = -1;
  for (let i = 200; i < bytes.length / 188; i++) {
    const p = bytes.subarray(i * 188, i * 188 + 188);
    if ((((p[1] & 0x1f) << 8) | p[2]) === 0x100 && !(p[1] & 0x40)) {
      victim = i;
      break;
    }
  }
  assert.ok(victim > 0);
  const damaged = concat([bytes.subarray(0, victim * 188), bytes.subarray(victim * 188 + 188)]);
  const { frames, stats } = demux(damaged);
  assert.equal(stats.continuityErrors, 1);
  assert.equal(stats.droppedPes, 1);
  const cleanVideo = clean.filter((f) => f.track === 0);
  const video = frames.filter((f) => f.track === 0);
  assert.equal(video.length, cleanVideo.length - 1);
  const flagged = video.filter((f) => f.flags & FrameFlags.DISCONTINUITY);
  assert.equal(flagged.length, 1);
  const i = video.indexOf(flagged[0]);
  // Everything before and after the lost frame is intact.
  assert.deepEqual(video.slice(0, i), cleanVideo.slice(0, i));
  assert.deepEqual(video[i].data, cleanVideo[i + 1].data);
  assert.equal(
    frames.filter((f) => f.track === 1).length,
    clean.filter((f) => f.track === 1).length,
  );
});

test.ffmpeg("demux follows a PMT change (H.264 then H.265 on the same PID)", async () => {
  const a = await Deno.readFile(await fixtures.h264Aac44());
  const b = await Deno.readFile(await fixtures.h265Aac48());
  const { frames } = demux(concat([a, b]));
  const codecs = [...new Set(frames.filter((f) => f.track === 0).map((f) => f.codec))];
  assert.deepEqual(codecs, ["h264", "h265"]);
  const firstH265 = frames.find((f) => f.codec === "h265");
  assert.ok(firstH265 && firstH265.flags & FrameFlags.CONFIG, "new codec starts with CONFIG");
  const firstMedia = frames.find((f) => f.codec === "h265" && !(f.flags & FrameFlags.CONFIG));
  assert.ok(firstMedia!.flags & FrameFlags.DISCONTINUITY, "new stream flagged DISCONTINUITY");
  const configs = frames.filter((f) => f.track === 1 && f.flags & FrameFlags.CONFIG);
  assert.equal(configs.length, 2, "AAC config change (44.1 -> 48 kHz) gives a second CONFIG");
  const alone = demux(b).frames.filter((f) => !(f.flags & FrameFlags.CONFIG)).length;
  const tail = frames.slice(frames.indexOf(firstH265)).filter((f) =>
    !(f.flags & FrameFlags.CONFIG)
  );
  assert.ok(tail.length >= alone - 2, "the second program is demuxed");
});

Deno.test("input that is not MPEG-TS errors the stream with a clear message", async () => {
  const rand = prng(9);
  const junk = Uint8Array.from({ length: 300_000 }, () => (rand() * 256) | 0);
  for (let i = 0; i < junk.length; i++) if (junk[i] === 0x47) junk[i] = 0;
  const stream = ReadableStream.from([junk]).pipeThrough(new TsDemuxer({ maxSyncSearch: 100_000 }));
  await assert.rejects(readAll(stream), /not an MPEG-TS stream/);
});

/** Decodes `bytes`, then flushes with `options`: the frames the flush emitted and the drops. */
function flushed(bytes: Uint8Array, options?: { cutShort?: boolean }) {
  const decoder = new TsDecoder();
  const frames: MediaFrame[] = [];
  decoder.decode(bytes, (f) => frames.push(f));
  const before = frames.length;
  decoder.flush((f) => frames.push(f), options);
  return { kinds: frames.slice(before).map((f) => f.kind), dropped: decoder.stats.droppedPes };
}

/** `bytes` cut after the last full-payload packet in the middle of a video PES. */
function cutMidPicture(bytes: Uint8Array, videoPid: number): Uint8Array {
  const list = packets(bytes);
  for (let i = list.length - 2; i > 0; i--) {
    const p = list[i];
    const next = list.slice(i + 1).find((q) => q.pid === videoPid);
    if (p.pid === videoPid && p.payloadOffset === 4 && next && !next.unitStart) {
      return bytes.subarray(0, (i + 1) * 188);
    }
  }
  throw new Error("no video PES spans two packets");
}

for (
  const [muxer, read] of [
    ["ffmpeg", async () => await Deno.readFile(await fixtures.h264Aac44())],
    ["our TsEncoder", async () => {
      const { frames } = demux(await Deno.readFile(await fixtures.h264Aac44()));
      return concat(muxChunks(frames));
    }],
  ] as const
) {
  test.ffmpeg(`flush cutShort (${muxer}): a whole last picture is kept, one cut mid-way dropped`, async () => {
    const bytes = await read();
    const videoPid = packets(bytes).find((p) => p.unitStart && p.randomAccess)!.pid;
    const whole = flushed(bytes, { cutShort: true });
    assert.ok(whole.kinds.includes("video"), "the last packet ended in stuffing: emitted");
    assert.deepEqual(whole, flushed(bytes), "as without cutShort");

    const cut = cutMidPicture(bytes, videoPid);
    const open = flushed(cut);
    assert.ok(open.kinds.includes("video"), "by default the open picture is emitted");
    const dropped = flushed(cut, { cutShort: true });
    assert.ok(!dropped.kinds.includes("video"), "cut short: the open picture is dropped");
    assert.equal(dropped.dropped, open.dropped + 1);
  });
}
