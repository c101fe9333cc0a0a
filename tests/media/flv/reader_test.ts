import assert from "node:assert/strict";
import { FrameFlags } from "../../../bus/frame.ts";
import { parseAudioSpecificConfig } from "../../../media/codec/aac.ts";
import { parseAvcConfig } from "../../../media/codec/h264.ts";
import { splitLengthPrefixed } from "../../../media/codec/nal.ts";
import { type Amf0Object, encodeAmf0 } from "../../../media/flv/amf0.ts";
import { makeFixture, probePackets, sine, testsrc, x264 } from "../../_util/ffmpeg.ts";
import { assertMatchesProbe, chunks, flvFixtures, mediaOf, readFlv, writeFlv } from "./_flv.ts";
import { testsWith } from "../../_util/tools.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg", "ffprobe"] });

for (const [name, args] of Object.entries(flvFixtures)) {
  test.ffmpeg(`FlvReader on ffmpeg's ${name}: frames match ffprobe packets`, async () => {
    const path = await makeFixture(name, args);
    const bytes = await Deno.readFile(path);
    let meta: Amf0Object | undefined;
    const frames = await readFlv(bytes, { onMetaData: (m) => meta = m });
    assertMatchesProbe(frames, await probePackets(path));
    const video = mediaOf(frames, "video");
    const audio = mediaOf(frames, "audio");
    assert.equal(meta?.videocodecid, video.length ? 7 : undefined);
    assert.equal(meta?.audiocodecid, audio.length ? 10 : undefined);
    if (video.length) {
      assert.deepEqual([meta?.width, meta?.height], [320, 240]);
      assert.ok(video.some((f) => f.pts !== f.dts), "B-frames give composition times");
      const config = frames.find((f) => f.kind === "video" && f.flags & FrameFlags.CONFIG)!;
      assert.equal(config.track, 0);
      assert.equal(parseAvcConfig(config.data).lengthSize, 4);
      for (const f of video) {
        assert.equal(f.codec, "h264");
        assert.ok(splitLengthPrefixed(f.data).length > 0);
      }
    }
    if (audio.length) {
      const config = frames.find((f) => f.kind === "audio" && f.flags & FrameFlags.CONFIG)!;
      assert.equal(config.track, 1);
      assert.equal(parseAudioSpecificConfig(config.data).sampleRate, meta?.audiosamplerate);
    }
  });
}

/** The bodies of the AAC sequence header tags (`0xAF 0x00 …`) of a whole FLV file. */
function aacSequenceHeaders(flv: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let pos = 13; pos + 11 <= flv.length;) {
    const size = (flv[pos + 1] << 16) | (flv[pos + 2] << 8) | flv[pos + 3];
    const body = flv.subarray(pos + 11, pos + 11 + size);
    if (flv[pos] === 8 && body[0] >> 4 === 10 && body[1] === 0) out.push(body.subarray(2));
    pos += 11 + size + 4;
  }
  return out;
}

test.ffmpeg("FlvReader on ffmpeg's -c copy of an MPEG-TS: the empty AAC sequence header is skipped", async () => {
  const ts = await makeFixture("h264-aac.ts", [
    ...testsrc(),
    ...sine({ sampleRate: 48000 }),
    ...x264(),
    ...["-c:a", "aac", "-f", "mpegts"],
  ]);
  const path = await makeFixture("h264-aac-from-ts.flv", ["-i", ts, "-c", "copy", "-f", "flv"]);
  const bytes = await Deno.readFile(path);
  // ffmpeg writes an empty AudioSpecificConfig (ADTS input), then the real one from the first frame
  const headers = aacSequenceHeaders(bytes);
  assert.deepEqual(headers.map((h) => h.length), [0, 2]);
  const frames = await readFlv(bytes);
  const streams = await probePackets(path);
  assertMatchesProbe(frames, streams);
  const audio = frames.filter((f) => f.kind === "audio");
  assert.equal(audio.filter((f) => f.flags & FrameFlags.CONFIG).length, 1);
  assert.ok(audio[0].flags & FrameFlags.CONFIG, "the config comes before the first AAC frame");
  assert.deepEqual(audio[0].data, headers[1]);
  const probe = streams.find((s) => s.codecType === "audio")!.info;
  const asc = parseAudioSpecificConfig(audio[0].data);
  assert.deepEqual([asc.sampleRate, asc.channelConfiguration], [
    Number(probe.sample_rate),
    probe.channels,
  ]);
});

test.ffmpeg("FlvReader gives the same frames whatever the chunk boundaries", async () => {
  const path = await makeFixture("h264-aac-44k.flv", flvFixtures["h264-aac-44k.flv"]);
  const bytes = await Deno.readFile(path);
  const whole = await readFlv(bytes);
  for (const [max, seed] of [[1, 1], [7, 2], [200, 3], [5000, 4]]) {
    const parts = chunks(bytes, max, seed);
    assert.deepEqual(await readFlv(parts), whole, `chunks up to ${max} bytes`);
  }
});

Deno.test("FlvReader unwraps 32-bit timestamps", async () => {
  const start = (2 ** 32 - 500) * 90; // 0.5 s before the 32-bit millisecond wrap
  const frames = Array.from({ length: 40 }, (_, i) => ({
    track: 1,
    kind: "audio" as const,
    codec: "aac" as const,
    pts: start + i * 1890,
    dts: start + i * 1890,
    flags: FrameFlags.KEYFRAME,
    data: new Uint8Array([0x21, i]),
  }));
  const bytes = await writeFlv(frames, { hasAudio: true });
  const back = await readFlv(bytes);
  assert.deepEqual(back.map((f) => f.dts), frames.map((f) => f.dts));
  // the tags themselves did wrap
  assert.ok(bytes.length > 0 && back[back.length - 1].dts > 2 ** 32 * 90);
});

Deno.test("FlvReader reports onMetaData inside @setDataFrame and skips a header extension", async () => {
  const body = encodeAmf0("@setDataFrame", "onMetaData", { width: 640, framerate: 30 });
  const tag = new Uint8Array(11 + body.length + 4);
  tag[0] = 18;
  tag[3] = body.length;
  tag.set(body, 11);
  // header size 12: three extra bytes before PreviousTagSize0
  const header = new Uint8Array([
    0x46,
    0x4c,
    0x56,
    1,
    5,
    0,
    0,
    0,
    12,
    0xee,
    0xee,
    0xee,
    0,
    0,
    0,
    0,
  ]);
  let meta: Amf0Object | undefined;
  const frames = await readFlv([header, tag], { onMetaData: (m) => meta = m });
  assert.deepEqual(frames, []);
  assert.deepEqual(meta, { width: 640, framerate: 30 });
});
