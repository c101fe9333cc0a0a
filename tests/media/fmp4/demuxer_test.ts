import assert from "node:assert/strict";
import { Fmp4Demuxer } from "../../../media/fmp4/mod.ts";
import { FrameFlags, type MediaFrame } from "../../../mod.ts";
import {
  ffmpeg,
  fixtureDir,
  probePackets,
  sine,
  testsrc,
  to90k,
  x264,
} from "../../_util/ffmpeg.ts";
import { concat } from "../../_util/bytes.ts";
import { fuzzParser } from "../../_util/fuzz.ts";
import { assertConfigFirst } from "../../_util/frames.ts";
import { testsWith } from "../../_util/tools.ts";
import { assertTsDecodes } from "../ts/_helpers.ts";
import { h264AacMp4, h265OpusMp4 } from "./_fixtures.ts";
import { mp4Frames } from "./_frames.ts";
import { fragmentByGop } from "./_fragment.ts";
import { audio, audioConfig, video, videoConfig } from "../hls/_synthetic.ts";

const test = await testsWith({
  ffmpeg: ["ffmpeg", "ffprobe"],
  x265Opus: ["ffmpeg", "ffprobe", "ffmpeg:libx265", "ffmpeg:libopus"],
});

/** Demuxes `parts` one after another with one demuxer. */
function demuxParts(parts: readonly Uint8Array[]): MediaFrame[] {
  const demuxer = new Fmp4Demuxer();
  const frames: MediaFrame[] = [];
  for (const part of parts) demuxer.decode(part, (f) => frames.push(f));
  return frames;
}

/**
 * Fragments an ffmpeg-made MP4 with our fragmenter and demuxes it back: per track the same
 * payloads, keyframes and presentation times (video exactly; audio to a tick, its times come
 * from sample counts), one CONFIG frame first with the source's configuration.
 */
async function roundTrip(source: string, name: string): Promise<void> {
  const offset = 9000;
  const { configs, frames } = await mp4Frames(source);
  const out = demuxParts(fragmentByGop(configs, frames, offset));
  assertConfigFirst(out, name);
  for (const config of configs) {
    const got = out.filter((f) => f.track === config.track);
    assert.deepEqual(got[0].data, config.data, `${name}: track ${config.track} CONFIG`);
    assert.equal(got[0].flags, FrameFlags.CONFIG);
    assert.equal(got.filter((f) => f.flags & FrameFlags.CONFIG).length, 1);
    const media = got.slice(1);
    const want = frames.filter((f) => f.track === config.track);
    assert.equal(media.length, want.length, `${name}: track ${config.track} frame count`);
    for (const [i, f] of media.entries()) {
      assert.equal(f.codec, config.codec);
      assert.deepEqual(f.data, want[i].data, `${name}: track ${config.track} frame ${i} bytes`);
      const key = config.kind === "audio" || (want[i].flags & FrameFlags.KEYFRAME) !== 0;
      assert.equal((f.flags & FrameFlags.KEYFRAME) !== 0, key, `${name}: frame ${i} keyframe`);
      const tolerance = config.kind === "video" ? 0 : 2;
      assert.ok(
        Math.abs(f.pts - (want[i].pts + offset)) <= tolerance,
        `${name}: track ${config.track} frame ${i} pts ${f.pts}, want ${want[i].pts + offset}`,
      );
      // Signed composition offsets lose the decode timeline's origin, not its steps.
      assert.equal(f.dts - media[0].dts, want[i].dts - want[0].dts, `${name}: frame ${i} dts step`);
      assert.ok(f.pts >= f.dts, `${name}: frame ${i} presented before it is decoded`);
    }
  }
  await assertTsDecodes(out, name);
}

test.ffmpeg("Fmp4Fragmenter → Fmp4Demuxer: H.264 + AAC round-trips, ffmpeg decodes it as TS", async () => {
  await roundTrip(await h264AacMp4(), "demux-roundtrip-h264-aac");
});

test.x265Opus("Fmp4Fragmenter → Fmp4Demuxer: H.265 + Opus round-trips, ffmpeg decodes it as TS", async () => {
  await roundTrip(await h265OpusMp4(), "demux-roundtrip-h265-opus");
});

/** Checks the demuxed frames of an ffmpeg-written fMP4 against ffprobe's packets of it. */
async function assertMatchesProbe(path: string, frames: MediaFrame[], name: string): Promise<void> {
  assertConfigFirst(frames, name);
  const streams = await probePackets(path);
  for (const s of streams) {
    const track = s.codecType === "video" ? 0 : 1;
    const media = frames.filter((f) => f.track === track && !(f.flags & FrameFlags.CONFIG));
    assert.equal(media.length, s.packets.length, `${name}: ${s.codecType} frame count`);
    assert.deepEqual(
      media.map((f) => (f.flags & FrameFlags.KEYFRAME) !== 0),
      s.packets.map((p) => p.keyframe),
      `${name}: ${s.codecType} keyframes`,
    );
    assert.deepEqual(media.map((f) => f.data.length), s.packets.map((p) => p.size));
    // The edit list is applied as ffmpeg applies it: the tracks start where ffprobe says.
    const start = Math.min(...s.packets.map((p) => to90k(p.pts!, s.timeBase)));
    const got = Math.min(...media.map((f) => f.pts));
    assert.ok(Math.abs(got - start) <= 2, `${name}: ${s.codecType} starts at ${got}, not ${start}`);
  }
}

test.ffmpeg("Fmp4Demuxer reads ffmpeg's fragmented MP4 (frag_keyframe+empty_moov+default_base_moof)", async () => {
  const path = `${await fixtureDir()}/demux-ffmpeg-frag.mp4`;
  const made = await ffmpeg([
    ...["-v", "error", "-y", ...testsrc({ rate: 25, duration: 3 }), ...sine({ duration: 3 })],
    ...x264({ gop: 25 }),
    ...[
      "-c:a",
      "aac",
      "-f",
      "mp4",
      "-movflags",
      "frag_keyframe+empty_moov+default_base_moof",
      path,
    ],
  ]);
  assert.equal(made.code, 0, made.stderr);
  const frames = demuxParts([await Deno.readFile(path)]);
  await assertMatchesProbe(path, frames, "frag mp4");
  await assertTsDecodes(frames, "demux-ffmpeg-frag");
});

test.ffmpeg("Fmp4Demuxer reads ffmpeg's HLS fMP4 segments one by one (EXT-X-MAP, then each .m4s)", async () => {
  const dir = await Deno.makeTempDir({ dir: await fixtureDir() });
  const made = await ffmpeg([
    ...["-v", "error", "-y", ...testsrc({ rate: 25, duration: 4 }), ...sine({ duration: 4 })],
    ...x264({ gop: 25 }),
    ...["-c:a", "aac", "-f", "hls", "-hls_time", "1", "-hls_segment_type", "fmp4"],
    ...["-hls_playlist_type", "vod", `${dir}/index.m3u8`],
  ]);
  assert.equal(made.code, 0, made.stderr);
  const playlist = await Deno.readTextFile(`${dir}/index.m3u8`);
  const map = /#EXT-X-MAP:URI="([^"]+)"/.exec(playlist)![1];
  const segments = playlist.split("\n").filter((line) => line.endsWith(".m4s"));
  assert.ok(segments.length >= 3, playlist);
  const parts = [await Deno.readFile(`${dir}/${map}`)];
  for (const s of segments) parts.push(await Deno.readFile(`${dir}/${s}`));
  const frames = demuxParts(parts);
  // The same segments joined into one file are what ffprobe reads.
  const joined = `${dir}/joined.mp4`;
  await Deno.writeFile(joined, concat(parts));
  await assertMatchesProbe(joined, frames, "hls fmp4");
  // ffmpeg's init segment (edit lists, esds with its descriptors) as a fuzz seed too.
  fuzzParser(
    "ffmpeg init segment",
    (bytes) => new Fmp4Demuxer().decode(bytes, () => {}),
    parts[0],
    {
      maxFlips: 2000,
      randomCount: 200,
    },
  );
  await assertTsDecodes(frames, "demux-ffmpeg-hls");
});

/** A small init segment and fragment of our fragmenter: H.264 and AAC, one GOP. */
function syntheticFile(): Uint8Array {
  const frames = [video(0, true), audio(0), video(3000, false), audio(1920), video(6000, false)];
  return concat(fragmentByGop([videoConfig(), audioConfig()], frames));
}

Deno.test("Fmp4Demuxer: a sample outside its mdat, a box past the end and a moof before moov throw RangeError", () => {
  const file = syntheticFile();
  const demux = (bytes: Uint8Array) => new Fmp4Demuxer().decode(bytes, () => {});
  demux(file);
  assert.throws(() => demux(file.subarray(0, file.length - 1)), RangeError);
  // Shrink the mdat (the last box) by one byte: its last sample now lies outside it.
  const mdat = findTop(file, "mdat");
  const shrunk = file.slice(0, file.length - 1);
  const view = new DataView(shrunk.buffer);
  view.setUint32(mdat, view.getUint32(mdat) - 1);
  assert.throws(() => demux(shrunk), /outside/);
  const moof = findTop(file, "moof");
  assert.throws(() => demux(file.subarray(moof)), /before any init segment/);
});

/** Offset of the top-level box `type` in `file`. */
function findTop(file: Uint8Array, type: string): number {
  const view = new DataView(file.buffer, file.byteOffset);
  for (let at = 0; at < file.length; at += view.getUint32(at)) {
    if (String.fromCharCode(...file.subarray(at + 4, at + 8)) === type) return at;
  }
  throw new Error(`no ${type}`);
}

Deno.test("Fmp4Demuxer fuzz: bit flips, truncations and random boxes only ever throw RangeError", () => {
  const file = syntheticFile();
  fuzzParser("fmp4 demuxer", (bytes) => new Fmp4Demuxer().decode(bytes, () => {}), file, {
    maxFlips: 3000,
    randomCount: 1000,
  });
  // Fragments against a good init segment.
  const moof = findTop(file, "moof");
  const init = file.subarray(0, moof);
  fuzzParser(
    "fmp4 fragment",
    (bytes) => {
      const demuxer = new Fmp4Demuxer();
      demuxer.decode(init, () => {});
      demuxer.decode(bytes, () => {});
    },
    file.subarray(moof),
    { maxFlips: 3000, randomCount: 1000, keepPrefix: 8 },
  );
});
