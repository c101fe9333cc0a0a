import assert from "node:assert/strict";
import { FrameFlags, type MediaFrame } from "../../../bus/frame.ts";
import { buildAvcConfig } from "../../../media/codec/h264.ts";
import { buildOpusHead } from "../../../media/codec/opus.ts";
import {
  encodeAudioTag,
  encodeVideoTag,
  FlvTagDecoder,
  writeVideoTagBody,
} from "../../../media/flv/tag.ts";
import { fuzzParser } from "../../_util/fuzz.ts";

const SPS = new Uint8Array([0x67, 0x42, 0xc0, 0x1e, 0xda, 0x05, 0x07, 0xe4]);
const PPS = new Uint8Array([0x68, 0xce, 0x3c, 0x80]);
const AVCC = buildAvcConfig({ sps: [SPS], pps: [PPS] });
const IDR = new Uint8Array([0, 0, 0, 3, 0x65, 0x88, 0x80]);
const ASC = new Uint8Array([0x12, 0x10]);
/** A minimal HEVCDecoderConfigurationRecord: version 1, 4-byte lengths, no arrays. */
const HVCC = new Uint8Array(23);
HVCC[0] = 1;
HVCC[21] = 0x03;
const fourcc = (s: string) => [...new TextEncoder().encode(s)];

function frame(f: Partial<MediaFrame> & Pick<MediaFrame, "codec" | "data">): MediaFrame {
  const kind = ["aac", "opus", "mp3"].includes(f.codec) ? "audio" : "video";
  return {
    track: kind === "video" ? 0 : 1,
    kind,
    pts: 0,
    dts: 0,
    flags: FrameFlags.NONE,
    ...f,
  };
}

/** Golden tag bodies from the FLV spec (v10.1 E.4.2/E.4.3) and Enhanced RTMP v2. */
const videoTable: [string, MediaFrame, number[]][] = [
  [
    "AVC sequence header",
    frame({ codec: "h264", flags: FrameFlags.CONFIG, data: AVCC, pts: 9000, dts: 9000 }),
    [0x17, 0, 0, 0, 0, ...AVCC],
  ],
  [
    "AVC keyframe, composition time 80 ms",
    frame({ codec: "h264", flags: FrameFlags.KEYFRAME, data: IDR, pts: 7200 + 1800, dts: 1800 }),
    [0x17, 1, 0, 0, 80, ...IDR],
  ],
  [
    "AVC inter frame, negative composition time",
    frame({ codec: "h264", data: IDR, pts: 90_000 - 3600, dts: 90_000 }),
    [0x27, 1, 0xff, 0xff, 0xd8, ...IDR],
  ],
  [
    "HEVC SequenceStart (hvc1)",
    frame({ codec: "h265", flags: FrameFlags.CONFIG, data: HVCC }),
    [0x90, ...fourcc("hvc1"), ...HVCC],
  ],
  [
    "HEVC CodedFrames with composition time",
    frame({ codec: "h265", flags: FrameFlags.KEYFRAME, data: IDR, pts: 3600, dts: 0 }),
    [0x91, ...fourcc("hvc1"), 0, 0, 40, ...IDR],
  ],
  [
    "HEVC CodedFramesX (composition time 0)",
    frame({ codec: "h265", data: IDR, pts: 900, dts: 900 }),
    [0xa3, ...fourcc("hvc1"), ...IDR],
  ],
  [
    "AV1 SequenceStart",
    frame({ codec: "av1", flags: FrameFlags.CONFIG, data: new Uint8Array([0x81, 0, 0x0c, 0]) }),
    [0x90, ...fourcc("av01"), 0x81, 0, 0x0c, 0],
  ],
  [
    "AV1 CodedFrames (no composition time)",
    frame({ codec: "av1", flags: FrameFlags.KEYFRAME, data: new Uint8Array([0x12, 0, 0x0a]) }),
    [0x91, ...fourcc("av01"), 0x12, 0, 0x0a],
  ],
];

const audioTable: [string, MediaFrame, number[]][] = [
  ["AAC sequence header", frame({ codec: "aac", flags: FrameFlags.CONFIG, data: ASC }), [
    0xaf,
    0,
    ...ASC,
  ]],
  [
    "AAC raw",
    frame({
      codec: "aac",
      flags: FrameFlags.KEYFRAME,
      data: new Uint8Array([0x21, 0x1b]),
      pts: 1920,
      dts: 1920,
    }),
    [0xaf, 1, 0x21, 0x1b],
  ],
  ["MP3", frame({ codec: "mp3", flags: FrameFlags.KEYFRAME, data: new Uint8Array([0xff, 0xfb]) }), [
    0x2f,
    0xff,
    0xfb,
  ]],
  [
    "Opus SequenceStart",
    frame({
      codec: "opus",
      flags: FrameFlags.CONFIG,
      data: buildOpusHead({ channels: 2, preSkip: 312, inputSampleRate: 48000 }),
    }),
    [
      0x90,
      ...fourcc("Opus"),
      ...buildOpusHead({ channels: 2, preSkip: 312, inputSampleRate: 48000 }),
    ],
  ],
  [
    "Opus CodedFrames",
    frame({ codec: "opus", flags: FrameFlags.KEYFRAME, data: new Uint8Array([0xfc, 1]) }),
    [0x91, ...fourcc("Opus"), 0xfc, 1],
  ],
];

Deno.test("FLV video tag bodies: golden bytes both ways", () => {
  for (const [name, f, bytes] of videoTable) {
    assert.deepEqual(encodeVideoTag(f), new Uint8Array(bytes), name);
    const out = new Uint8Array(bytes.length + 2);
    assert.equal(writeVideoTagBody(f, out, 2), bytes.length);
    assert.deepEqual(out.subarray(2), new Uint8Array(bytes), name);
    const decoder = new FlvTagDecoder();
    if (f.codec === "h264" && !(f.flags & FrameFlags.CONFIG)) {
      decoder.decodeVideo(encodeVideoTag(videoTable[0][1]), 0);
    }
    const back = decoder.decodeVideo(new Uint8Array(bytes), Math.round(f.dts / 90));
    assert.deepEqual(back, f, name);
  }
});

Deno.test("FLV audio tag bodies: golden bytes both ways", () => {
  for (const [name, f, bytes] of audioTable) {
    assert.deepEqual(encodeAudioTag(f), new Uint8Array(bytes), name);
    assert.deepEqual(new FlvTagDecoder().decodeAudio(new Uint8Array(bytes), f.dts / 90), f, name);
  }
  assert.deepEqual(
    encodeAudioTag(frame({ codec: "mp3", data: new Uint8Array([1]) }), {
      sampleRate: 22050,
      channels: 1,
    }),
    new Uint8Array([0x2a, 1]),
  );
  // Enhanced audio mp4a carries AAC too
  const mp4a = new FlvTagDecoder().decodeAudio(
    new Uint8Array([0x90, ...fourcc("mp4a"), ...ASC]),
    5,
  );
  assert.deepEqual([mp4a?.codec, mp4a?.flags, mp4a?.pts], ["aac", FrameFlags.CONFIG, 450]);
});

Deno.test("an empty AAC sequence header gives no frame; a later non-empty one is the config", () => {
  for (
    const [empty, full] of [
      [[0xaf, 0], [0xaf, 0, ...ASC]],
      [[0x90, ...fourcc("mp4a")], [0x90, ...fourcc("mp4a"), ...ASC]],
    ]
  ) {
    const d = new FlvTagDecoder();
    assert.equal(d.decodeAudio(new Uint8Array(empty), 0), undefined);
    const config = d.decodeAudio(new Uint8Array(full), 45);
    assert.deepEqual([config?.flags, config?.data, config?.dts], [FrameFlags.CONFIG, ASC, 4050]);
  }
});

Deno.test("legacy HEVC (codec id 12) and enhanced avc1 decode like their standard forms", () => {
  const d = new FlvTagDecoder();
  const hevc = d.decodeVideo(new Uint8Array([0x1c, 1, 0, 0, 40, ...IDR]), 10);
  assert.deepEqual([hevc?.codec, hevc?.pts, hevc?.dts, hevc?.flags], [
    "h265",
    4500,
    900,
    FrameFlags.KEYFRAME,
  ]);
  const cfg = d.decodeVideo(new Uint8Array([0x90, ...fourcc("avc1"), ...AVCC]), 0);
  assert.deepEqual([cfg?.codec, cfg?.flags, cfg?.data], ["h264", FrameFlags.CONFIG, AVCC]);
  const coded = d.decodeVideo(
    new Uint8Array([0xa1, ...fourcc("avc1"), 0xff, 0xff, 0xff, ...IDR]),
    100,
  );
  assert.deepEqual([coded?.pts, coded?.dts, coded?.flags], [8910, 9000, FrameFlags.NONE]);
});

Deno.test("NAL lengths of 1, 2 or 3 bytes become 4-byte lengths", () => {
  for (const lengthSize of [1, 2, 3]) {
    const d = new FlvTagDecoder();
    const record = AVCC.slice();
    record[4] = 0xfc | (lengthSize - 1);
    d.decodeVideo(new Uint8Array([0x17, 0, 0, 0, 0, ...record]), 0);
    const nal = [0x65, 0x88, 0x80];
    const prefix = new Array(lengthSize).fill(0);
    prefix[lengthSize - 1] = 3;
    const f = d.decodeVideo(
      new Uint8Array([0x17, 1, 0, 0, 0, ...prefix, ...nal, ...prefix, ...nal]),
      0,
    );
    assert.deepEqual(
      f?.data,
      new Uint8Array([0, 0, 0, 3, ...nal, 0, 0, 0, 3, ...nal]),
      `size ${lengthSize}`,
    );
  }
});

Deno.test("ignored bodies and errors", () => {
  const d = new FlvTagDecoder();
  assert.equal(d.decodeVideo(new Uint8Array([0x17, 2, 0, 0, 0]), 0), undefined); // end of sequence
  assert.equal(d.decodeVideo(new Uint8Array([0x52, 0]), 0), undefined); // command frame
  assert.equal(d.decodeVideo(new Uint8Array([0x12, 1, 2]), 0), undefined); // Sorenson H.263
  assert.equal(d.decodeVideo(new Uint8Array([0x92, ...fourcc("hvc1")]), 0), undefined); // SequenceEnd
  assert.equal(d.decodeVideo(new Uint8Array([0x91, ...fourcc("vp09"), 1]), 0), undefined);
  assert.equal(d.decodeAudio(new Uint8Array([0xb2, 1]), 0), undefined); // Speex
  assert.equal(d.decodeVideo(new Uint8Array([0x17, 1, 0, 0, 0]), 0), undefined); // empty AU
  assert.throws(() => d.decodeVideo(new Uint8Array(0), 0), /empty/);
  assert.throws(() => d.decodeVideo(new Uint8Array([0x17, 1, 0]), 0), /truncated/);
  assert.throws(
    () => d.decodeVideo(new Uint8Array([0x17, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0]), 0),
    /configurationVersion/,
  );
  assert.throws(
    () => d.decodeVideo(new Uint8Array([0x17, 1, 0, 0, 0, 0, 0, 0, 9, 1]), 0),
    /overruns/,
  );
  assert.throws(() => d.decodeVideo(new Uint8Array([0x96, ...fourcc("hvc1")]), 0), /not supported/);
  assert.throws(() => d.decodeAudio(new Uint8Array([0xaf, 0, 0x16, 0x90]), 0), /reserved/);
  assert.throws(
    () => d.decodeAudio(new Uint8Array([0x90, ...fourcc("Opus"), 1, 2]), 0),
    /OpusHead/,
  );
  assert.throws(
    () => encodeVideoTag(frame({ codec: "aac", data: new Uint8Array(1) })),
    /cannot carry video/,
  );
  assert.throws(
    () => encodeVideoTag(frame({ codec: "h264", data: IDR, pts: 90 * 0x800000, dts: 0 })),
    /24 bits/,
  );
  assert.throws(
    () => encodeAudioTag(frame({ codec: "mp3", flags: FrameFlags.CONFIG, data: ASC })),
    /MP3/,
  );
});

Deno.test("fuzz: tag decoder returns or throws RangeError", () => {
  const d = new FlvTagDecoder();
  for (const [name, , bytes] of videoTable) {
    fuzzParser(`decodeVideo ${name}`, (b) => d.decodeVideo(b, 0), new Uint8Array(bytes), {
      randomCount: 300,
    });
  }
  for (const [name, , bytes] of audioTable) {
    fuzzParser(`decodeAudio ${name}`, (b) => d.decodeAudio(b, 0), new Uint8Array(bytes), {
      randomCount: 300,
    });
  }
});
