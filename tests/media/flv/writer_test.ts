import assert from "node:assert/strict";
import { FrameFlags, type MediaFrame } from "../../../bus/frame.ts";
import { parseHevcConfig } from "../../../media/codec/h265.ts";
import { lengthPrefixedFromNalUnits, writeAnnexB } from "../../../media/codec/nal.ts";
import type { Amf0Object } from "../../../media/flv/amf0.ts";
import {
  decodeCheck,
  makeFixture,
  probePackets,
  type ProbeStream,
  sine,
  tempPath,
  testsrc,
  x264,
} from "../../_util/ffmpeg.ts";
import { readAll } from "../../_util/frames.ts";
import { mp4Frames } from "../codec/_mp4.ts";
import { FlvWriter } from "../../../media/flv/writer.ts";
import { flvFixtures, readFlv, writeFlv } from "./_flv.ts";
import { testsWith } from "../../_util/tools.ts";

const test = await testsWith({
  ffmpeg: ["ffmpeg", "ffprobe"],
  x265: ["ffmpeg", "ffprobe", "ffmpeg:libx265"],
});

/** ffprobe's packets without file positions, for comparing two files. */
function packets(streams: ProbeStream[]) {
  return streams.map((s) => ({
    type: s.codecType,
    codec: s.codecName,
    packets: s.packets.map(({ pts, dts, size, keyframe }) => ({ pts, dts, size, keyframe })),
  }));
}

for (const [name, args] of Object.entries(flvFixtures)) {
  test.ffmpeg(`FlvReader → FlvWriter on ffmpeg's ${name}: ffmpeg decodes it cleanly, packets agree`, async () => {
    const input = await makeFixture(name, args);
    const frames = await readFlv(await Deno.readFile(input));
    const output = await tempPath(`rewritten-${name}`);
    await Deno.writeFile(output, await writeFlv(frames));
    const check = await decodeCheck(output);
    assert.equal(check.stderr, "");
    assert.equal(check.code, 0);
    const theirs = packets(await probePackets(input));
    assert.ok(theirs.every((s) => s.packets.length > 0));
    assert.deepEqual(packets(await probePackets(output)), theirs);
  });
}

/** The frames expected after a trip through FLV: timestamps on whole milliseconds. */
function inMilliseconds(frames: MediaFrame[]): MediaFrame[] {
  return frames.map((f) => {
    const dts = Math.round(f.dts / 90) * 90;
    return { ...f, dts, pts: dts + (Math.round(f.pts / 90) - Math.round(f.dts / 90)) * 90 };
  });
}

test.ffmpeg("H.264 + AAC frames from an MP4 → FlvWriter: ffprobe agrees", async () => {
  const mp4 = await makeFixture("h264-aac-bf.mp4", [
    ...testsrc(),
    ...sine({ sampleRate: 44100 }),
    ...x264(),
    ...["-c:a", "aac"],
  ]);
  const { frames } = await mp4Frames(mp4, 90_000);
  const output = await tempPath("from-mp4.flv");
  await Deno.writeFile(output, await writeFlv(frames));
  const check = await decodeCheck(output);
  assert.deepEqual([check.code, check.stderr], [0, ""]);
  const streams = await probePackets(output);
  const expected = inMilliseconds(frames);
  for (const s of streams) {
    const ours = expected.filter((f) => f.kind === s.codecType && !(f.flags & FrameFlags.CONFIG));
    assert.deepEqual(
      s.packets.map((p) => [p.pts! * 90, p.dts! * 90, p.keyframe, p.size]),
      ours.map((f) => [f.pts, f.dts, (f.flags & FrameFlags.KEYFRAME) !== 0, f.data.length]),
      s.codecType,
    );
  }
});

test.x265({
  name: "H.265 + AAC frames from an MP4 → FlvWriter (Enhanced FLV hvc1) → FlvReader round trip",
  fn: async () => {
    const mp4 = await makeFixture("h265-aac.mp4", [
      ...testsrc(),
      ...sine({ sampleRate: 48000 }),
      ...["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:bframes=2"],
      ...["-pix_fmt", "yuv420p", "-c:a", "aac"],
    ]);
    const { frames } = await mp4Frames(mp4, 90_000);
    assert.ok(frames.some((f) => f.pts !== f.dts), "B-frames give composition times");
    const bytes = await writeFlv(frames);
    // every video tag is an ExVideoTagHeader with FourCC hvc1
    let pos = 13;
    let hvc1Tags = 0;
    while (pos < bytes.length) {
      const size = (bytes[pos + 1] << 16) | (bytes[pos + 2] << 8) | bytes[pos + 3];
      if (bytes[pos] === 9) {
        assert.equal(bytes[pos + 11] & 0x80, 0x80);
        assert.equal(new TextDecoder().decode(bytes.subarray(pos + 12, pos + 16)), "hvc1");
        hvc1Tags++;
      }
      pos += 11 + size + 4;
    }
    assert.equal(pos, bytes.length);
    assert.equal(hvc1Tags, frames.filter((f) => f.kind === "video").length);
    const back = await readFlv(chunksOf(bytes, 1000));
    assert.deepEqual(back, inMilliseconds(frames));
    // ffmpeg 5.1 cannot read Enhanced FLV, so let it decode what came back out as Annex-B
    const config = parseHevcConfig(back[0].data);
    const video = back.filter((f) => f.kind === "video" && !(f.flags & FrameFlags.CONFIG));
    const params = lengthPrefixedFromNalUnits([...config.vps, ...config.sps, ...config.pps]);
    const size = params.length + video.reduce((n, f) => n + f.data.length, 0);
    const annexB = new Uint8Array(size);
    let at = writeAnnexB(params, annexB, 0);
    for (const f of video) at += writeAnnexB(f.data, annexB, at);
    const hevc = await tempPath("roundtrip.hevc");
    await Deno.writeFile(hevc, annexB);
    const check = await decodeCheck(hevc, ["-f", "hevc"]);
    assert.deepEqual([check.code, check.stderr], [0, ""]);
    const [probe] = await probePackets(hevc, ["-f", "hevc"]);
    assert.equal(probe.packets.length, video.length);
    assert.equal(
      probe.packets.filter((p) => p.keyframe).length,
      video.filter((f) => f.flags & FrameFlags.KEYFRAME).length,
    );
  },
});

function chunksOf(bytes: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

const aac = (dts: number, track = 1): MediaFrame => ({
  track,
  kind: "audio",
  codec: "aac",
  pts: dts,
  dts,
  flags: FrameFlags.KEYFRAME,
  data: new Uint8Array([0x21, 0x10]),
});
const avc = (dts: number, track = 0): MediaFrame => ({
  track,
  kind: "video",
  codec: "h264",
  pts: dts,
  dts,
  flags: FrameFlags.KEYFRAME,
  data: new Uint8Array([0, 0, 0, 1, 0x65]),
});

Deno.test("FlvWriter header flags: inferred from the frames or given", async () => {
  const flags = async (frames: MediaFrame[], opts = {}) => (await writeFlv(frames, opts))[4];
  assert.equal(await flags([aac(0), aac(1920)]), 4);
  assert.equal(await flags([avc(0)]), 1);
  assert.equal(await flags([aac(0), avc(0)]), 5);
  assert.equal(await flags([]), 0);
  // a video frame arriving after 1 s of audio no longer changes the header
  const late = [...Array.from({ length: 60 }, (_, i) => aac(i * 1920)), avc(120_000)];
  assert.equal(await flags(late), 4);
  assert.equal(await flags([aac(0)], { hasVideo: true }), 1);
  assert.equal(await flags([aac(0)], { hasVideo: true, hasAudio: true }), 5);
  const out = await writeFlv(late);
  assert.equal((await readFlv(out)).length, late.length, "late frames are still written");
});

test.ffmpeg("FlvWriter writes onMetaData and only the first track of each kind", async () => {
  const metadata: Amf0Object = { width: 320, height: 240, encoder: "arcly" };
  const bytes = await writeFlv([avc(0), avc(0, 5), aac(0), aac(0, 7), avc(3600)], { metadata });
  let meta: Amf0Object | undefined;
  const frames = await readFlv(bytes, { onMetaData: (m) => meta = m });
  assert.deepEqual(meta, metadata);
  assert.deepEqual(frames.map((f) => [f.kind, f.dts]), [["video", 0], ["audio", 0], [
    "video",
    3600,
  ]]);
  const path = await tempPath("metadata.flv");
  await Deno.writeFile(path, bytes);
  assert.equal((await probePackets(path)).length, 2);
});

Deno.test("FlvWriter errors the stream on a frame FLV cannot carry", async () => {
  const bad = { ...avc(0), codec: "mp3" as const };
  const stream = ReadableStream.from([avc(0), bad]).pipeThrough(new FlvWriter({ hasVideo: true }));
  await assert.rejects(readAll(stream), /cannot carry video codec mp3/);
});
