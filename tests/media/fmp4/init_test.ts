import assert from "node:assert/strict";
import { buildInitSegment, type Fmp4Track, trackFromConfig } from "../../../media/fmp4/mod.ts";
import type { MediaFrame } from "../../../mod.ts";
import { probePackets } from "../../_util/ffmpeg.ts";
import { h264AacMp4, h265OpusMp4 } from "./_fixtures.ts";
import { configFrame, mp4Frames } from "./_frames.ts";
import { parseMp4 } from "./_mp4box.ts";
import { testsWith } from "../../_util/tools.ts";

const test = await testsWith({
  ffmpeg: ["ffmpeg", "ffprobe"],
  x265Opus: ["ffmpeg", "ffprobe", "ffmpeg:libx265", "ffmpeg:libopus"],
});

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The first box of `type` anywhere in `bytes` (found by its four-character code). */
function findBox(bytes: Uint8Array, type: string): Uint8Array {
  const code = [...type].map((c) => c.charCodeAt(0));
  for (let i = 4; i + 4 <= bytes.length; i++) {
    if (code.every((c, k) => bytes[i + k] === c)) {
      const size = new DataView(bytes.buffer, bytes.byteOffset + i - 4).getUint32(0);
      return bytes.subarray(i - 4, i - 4 + size);
    }
  }
  throw new Error(`no ${type} box`);
}

function config(track: number, codec: MediaFrame["codec"], data: number[]): MediaFrame {
  return configFrame(track, codec, new Uint8Array(data));
}

const AAC_LC_48K_STEREO = [0x11, 0x90];
// OpusHead: version 1, 2 channels, pre-skip 312, 48000 Hz, gain 0, family 0.
const OPUS_HEAD = [
  ..."OpusHead".split("").map((c) => c.charCodeAt(0)),
  ...[1, 2, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, 0],
];

Deno.test("init: ftyp brands, esds and dOps match hand-made golden bytes", () => {
  const aac = trackFromConfig(config(1, "aac", AAC_LC_48K_STEREO));
  const opus = trackFromConfig(config(2, "opus", OPUS_HEAD));
  const single = buildInitSegment([aac]);
  // ftyp: major iso6, minor 0, compatible iso6 mp41 cmfc (one track: CMAF)
  assert.equal(
    hex(single.subarray(0, 28)),
    "0000001c6674797069736f360000000069736f366d703431636d6663",
  );
  assert.equal(
    hex(findBox(single, "esds")),
    [
      "00000027 65736473 00000000", // esds, 39 bytes, version 0
      "03 19 0000 00", // ES_Descriptor, ES_ID 0, no flags
      "04 11 40 15 000000 00000000 00000000", // DecoderConfig: MPEG-4 audio, audio stream
      "05 02 1190", // DecoderSpecificInfo: the AudioSpecificConfig
      "06 01 02", // SLConfig: predefined MP4
    ].join("").replaceAll(" ", ""),
  );
  const both = buildInitSegment([aac, opus]);
  assert.equal(hex(both.subarray(0, 24)), "000000186674797069736f360000000069736f366d703431");
  // dOps is big-endian where OpusHead is little-endian
  assert.equal(hex(findBox(both, "dOps")), "00000013644f707300020138" + "0000bb80" + "0000" + "00");
  const tracks = parseMp4(both).tracks;
  assert.deepEqual(tracks.map((t) => [t.id, t.codec, t.timescale]), [
    [2, "mp4a.40.2", 48000],
    [3, "Opus", 48000],
  ]);
  assert.deepEqual(tracks.map((t) => [t.audio?.sample_rate, t.audio?.channel_count]), [
    [48000, 2],
    [48000, 2],
  ]);
});

async function checkInit(path: string): Promise<void> {
  const { configs } = await mp4Frames(path);
  const tracks = configs.map(trackFromConfig);
  const init = buildInitSegment(tracks);
  const probed = await probePackets(path);
  const parsed = parseMp4(init);
  assert.equal(parsed.tracks.length, tracks.length);
  for (const [i, t] of tracks.entries()) {
    const mine = parsed.tracks[i];
    const ref = probed.find((s) => s.codecType === t.kind)!;
    assert.equal(mine.id, t.track + 1);
    assert.equal(mine.timescale, t.timescale);
    assert.equal(mine.nbSamples, 0);
    if (t.kind === "video") {
      assert.equal(mine.codec, t.codecString, "mp4box's codec string from our avcC/hvcC");
      assert.deepEqual([t.width, t.height], [ref.info.width, ref.info.height]);
      assert.deepEqual(mine.video, { width: t.width, height: t.height });
    } else {
      assert.equal(t.sampleRate, Number(ref.info.sample_rate));
      assert.equal(t.channels, ref.info.channels);
      assert.deepEqual(mine.audio?.sample_rate, t.sampleRate);
      assert.deepEqual(mine.audio?.channel_count, t.channels);
    }
  }
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/init.mp4`, init);
    const streams = await probePackets(`${dir}/init.mp4`);
    assert.deepEqual(
      streams.map((s) => [s.codecName, s.packets.length]),
      probed.map((s) => [s.codecName, 0]),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

test.ffmpeg("init: H.264 + AAC from an ffmpeg file, read back by mp4box.js and ffprobe", async () => {
  await checkInit(await h264AacMp4());
});

test.x265Opus({
  name: "init: H.265 + Opus from an ffmpeg file, read back by mp4box.js and ffprobe",
  fn: async () => {
    const path = await h265OpusMp4();
    await checkInit(path);
    const { configs } = await mp4Frames(path);
    const t = trackFromConfig(configs[0]);
    assert.match(t.codecString, /^hvc1\.1\.6\.L\d+\.[0-9A-F]+/);
  },
});

Deno.test("init: bad input gives clear errors", () => {
  const aac = trackFromConfig(config(1, "aac", AAC_LC_48K_STEREO));
  assert.throws(() => buildInitSegment([]), RangeError);
  assert.throws(() => buildInitSegment([aac, aac]), /duplicate track/);
  assert.throws(() => trackFromConfig({ ...config(1, "aac", AAC_LC_48K_STEREO), flags: 0 }), {
    name: "TypeError",
    message: /expected a CONFIG frame/,
  });
  assert.throws(() => trackFromConfig(config(0, "av1", [0x81])), /av1 is not supported/);
  assert.throws(() => trackFromConfig(config(0, "h264", [1, 2])), RangeError);
  assert.throws(() => trackFromConfig(config(1, "opus", [1, 2, 3])), RangeError);
  const surround: Fmp4Track = { ...trackFromConfig(config(1, "opus", OPUS_HEAD)) };
  const badFamily = new Uint8Array(OPUS_HEAD);
  badFamily[18] = 1; // mapping family 1 without its table
  assert.throws(
    () => buildInitSegment([{ ...surround, config: badFamily }]),
    RangeError,
  );
});
