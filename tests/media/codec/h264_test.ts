import assert from "node:assert/strict";
import { BitWriter, escapeRbsp } from "../../../media/codec/bits.ts";
import {
  avcCodecString,
  buildAvcConfig,
  H264NalType,
  h264NalType,
  isH264Keyframe,
  parseAvcConfig,
  parseH264Sps,
} from "../../../media/codec/h264.ts";
import { lengthPrefixedFromNalUnits, splitAnnexB } from "../../../media/codec/nal.ts";
import { makeFixture, probePackets, testsrc } from "../../_util/ffmpeg.ts";
import { fuzzParser } from "../../_util/fuzz.ts";
import { testsWith } from "../../_util/tools.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg", "ffprobe"] });

/** Baseline 3.0, 320x240, POC type 2, no VUI — built by hand from H.264 7.3.2.1. */
const BASELINE_SPS = new Uint8Array([0x67, 0x42, 0xc0, 0x1e, 0xda, 0x05, 0x07, 0xe4]);
const PPS = new Uint8Array([0x68, 0xce, 0x3c, 0x80]);

/** Writes an SPS NAL from fields, with rbsp trailing bits and emulation prevention. */
function buildSps(f: {
  profile: number;
  level: number;
  chroma?: number;
  scaling?: boolean;
  pocType: number;
  widthMbs: number;
  heightMapUnits: number;
  frameMbsOnly: boolean;
  crop?: [number, number, number, number];
  timing?: [number, number];
  reorder?: number;
  refs?: number;
}): Uint8Array {
  const w = new BitWriter();
  w.writeBits(f.profile, 8);
  w.writeBits(0, 8);
  w.writeBits(f.level, 8);
  w.writeUE(0); // sps id
  if (f.profile === 100) {
    w.writeUE(f.chroma ?? 1);
    w.writeUE(0); // bit depth luma - 8
    w.writeUE(0); // bit depth chroma - 8
    w.writeBits(0, 1);
    w.writeBits(f.scaling ? 1 : 0, 1);
    if (f.scaling) {
      for (let i = 0; i < 8; i++) {
        w.writeBits(i === 0 || i === 6 ? 1 : 0, 1);
        if (i === 0) { for (let j = 0; j < 16; j++) w.writeSE(j === 0 ? 8 : 0); // 16 then flat
         }
        if (i === 6) w.writeSE(-8); // nextScale = 0: use default list
      }
    }
  }
  w.writeUE(0); // log2_max_frame_num - 4
  w.writeUE(f.pocType);
  if (f.pocType === 0) w.writeUE(2);
  if (f.pocType === 1) {
    w.writeBits(0, 1);
    w.writeSE(-2);
    w.writeSE(1);
    w.writeUE(2);
    w.writeSE(3);
    w.writeSE(-4);
  }
  w.writeUE(f.refs ?? 1); // max_num_ref_frames
  w.writeBits(0, 1);
  w.writeUE(f.widthMbs - 1);
  w.writeUE(f.heightMapUnits - 1);
  w.writeBits(f.frameMbsOnly ? 1 : 0, 1);
  if (!f.frameMbsOnly) w.writeBits(0, 1);
  w.writeBits(1, 1); // direct_8x8
  w.writeBits(f.crop ? 1 : 0, 1);
  if (f.crop) { for (const c of f.crop) w.writeUE(c); }
  const vui = f.timing !== undefined || f.reorder !== undefined;
  w.writeBits(vui ? 1 : 0, 1);
  if (vui) {
    w.writeBits(0, 4); // aspect, overscan, video signal, chroma loc
    w.writeBits(f.timing ? 1 : 0, 1);
    if (f.timing) {
      w.writeBits(f.timing[0], 32);
      w.writeBits(f.timing[1], 32);
      w.writeBits(1, 1);
    }
    w.writeBits(0, 3); // nal hrd, vcl hrd, pic_struct
    w.writeBits(f.reorder !== undefined ? 1 : 0, 1);
    if (f.reorder !== undefined) {
      w.writeBits(1, 1);
      for (const v of [2, 1, 16, 16, f.reorder, 4]) w.writeUE(v);
    }
  }
  w.writeBits(1, 1); // rbsp_stop_one_bit
  return new Uint8Array([0x67, ...escapeRbsp(w.bytes())]);
}

Deno.test("H.264 SPS: hand-built golden bytes", () => {
  assert.deepEqual(
    buildSps({
      profile: 66,
      level: 30,
      pocType: 2,
      widthMbs: 20,
      heightMapUnits: 15,
      frameMbsOnly: true,
    })
      .subarray(4),
    BASELINE_SPS.subarray(4),
  );
  const s = parseH264Sps(BASELINE_SPS);
  assert.equal(s.profile, 66);
  assert.equal(s.compatibility, 0xc0);
  assert.equal(s.level, 30);
  assert.equal(s.width, 320);
  assert.equal(s.height, 240);
  assert.equal(s.pocType, 2);
  assert.equal(s.log2MaxFrameNum, 4);
  assert.equal(s.maxNumRefFrames, 1);
  assert.equal(s.frameMbsOnly, true);
  assert.equal(s.frameRate, undefined);
  assert.equal(avcCodecString(s), "avc1.42c01e");
  assert.equal(h264NalType(BASELINE_SPS), H264NalType.SPS);
});

Deno.test("H.264 SPS: cropping, interlace, scaling lists, POC type 1 and VUI", () => {
  const hd = parseH264Sps(
    buildSps({
      profile: 100,
      level: 40,
      scaling: true,
      pocType: 0,
      widthMbs: 120,
      heightMapUnits: 68,
      frameMbsOnly: true,
      crop: [0, 0, 0, 4],
      timing: [1001, 60000],
      reorder: 2,
    }),
  );
  assert.deepEqual([hd.width, hd.height, hd.profile, hd.level], [1920, 1080, 100, 40]);
  assert.equal(hd.log2MaxPocLsb, 6);
  assert.equal(hd.maxNumReorderFrames, 2);
  assert.ok(Math.abs(hd.frameRate! - 29.97) < 0.001);
  const field = parseH264Sps(
    buildSps({
      profile: 77,
      level: 30,
      pocType: 1,
      widthMbs: 45,
      heightMapUnits: 18,
      frameMbsOnly: false,
      crop: [1, 2, 3, 0],
    }),
  );
  // 720x576 field coding: crop units are 2 horizontally, 4 vertically
  assert.deepEqual([field.width, field.height], [720 - 6, 576 - 12]);
  assert.deepEqual(field.offsetForRefFrame, [3, -4]);
  assert.equal(field.offsetForNonRefPic, -2);
  assert.equal(field.offsetForTopToBottomField, 1);
  assert.throws(() => parseH264Sps(PPS), /not an H.264 SPS/);
  assert.throws(
    () =>
      parseH264Sps(
        buildSps({
          profile: 66,
          level: 30,
          pocType: 2,
          widthMbs: 1,
          heightMapUnits: 1,
          frameMbsOnly: true,
          crop: [8, 0, 0, 0],
        }),
      ),
    /cropping/,
  );
});

Deno.test("avcC: golden bytes and round trip", () => {
  const record = buildAvcConfig({ sps: [BASELINE_SPS], pps: [PPS] });
  assert.deepEqual(
    record,
    new Uint8Array([1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, 8, ...BASELINE_SPS, 1, 0, 4, ...PPS]),
  );
  const c = parseAvcConfig(record);
  assert.deepEqual(c, {
    profile: 0x42,
    compatibility: 0xc0,
    level: 0x1e,
    lengthSize: 4,
    sps: [BASELINE_SPS],
    pps: [PPS],
  });
  assert.equal(avcCodecString(c), "avc1.42c01e");
  // high profile: chroma format / bit depth extension
  const high = buildSps({
    profile: 100,
    level: 31,
    pocType: 0,
    widthMbs: 80,
    heightMapUnits: 45,
    frameMbsOnly: true,
  });
  const hr = buildAvcConfig({ sps: [high], pps: [PPS] });
  assert.deepEqual(hr.subarray(hr.length - 4), new Uint8Array([0xfd, 0xf8, 0xf8, 0]));
  const hc = parseAvcConfig(hr);
  assert.deepEqual([hc.chromaFormat, hc.bitDepthLuma, hc.bitDepthChroma], [1, 8, 8]);
  assert.deepEqual(buildAvcConfig({ sps: hc.sps, pps: hc.pps }), hr);
  assert.equal(avcCodecString(hc), "avc1.64001f");
  // lengthSizeMinusOne = 1
  const two = record.slice();
  two[4] = 0xfd;
  assert.equal(parseAvcConfig(two).lengthSize, 2);
  assert.throws(() => parseAvcConfig(record.subarray(0, 12)), /overruns/);
  assert.throws(() => buildAvcConfig({ sps: [], pps: [] }), /at least one SPS/);
});

Deno.test("isH264Keyframe", () => {
  const idr = new Uint8Array([0x65, 0x88]);
  const slice = new Uint8Array([0x41, 0x9a]);
  assert.equal(isH264Keyframe(lengthPrefixedFromNalUnits([BASELINE_SPS, PPS, idr])), true);
  assert.equal(isH264Keyframe(lengthPrefixedFromNalUnits([slice])), false);
});

const x264Cases = [
  { size: "320x240", profile: "baseline", idc: 66, name: "Constrained Baseline" },
  { size: "1280x720", profile: "main", idc: 77, name: "Main" },
  { size: "1920x1080", profile: "high", idc: 100, name: "High" },
];

for (const c of x264Cases) {
  test.ffmpeg(`H.264 SPS from libx264 ${c.size} ${c.profile} matches ffprobe`, async () => {
    const path = await makeFixture(`x264-${c.size}-${c.profile}.h264`, [
      ...testsrc({ size: c.size, rate: 25, duration: 0.2 }),
      ...["-c:v", "libx264", "-profile:v", c.profile, "-preset", "veryfast", "-pix_fmt", "yuv420p"],
      ...["-f", "h264"],
    ]);
    const nals = splitAnnexB(await Deno.readFile(path));
    const spsNal = nals.find((n) => h264NalType(n) === H264NalType.SPS)!;
    const ppsNal = nals.find((n) => h264NalType(n) === H264NalType.PPS)!;
    const sps = parseH264Sps(spsNal);
    const [probe] = await probePackets(path);
    const [w, h] = c.size.split("x").map(Number);
    assert.equal(sps.width, w);
    assert.equal(sps.height, h);
    assert.equal(probe.info.width, w);
    assert.equal(probe.info.height, h);
    assert.equal(sps.profile, c.idc);
    assert.equal(probe.info.profile, c.name);
    assert.equal(sps.level, probe.info.level);
    assert.equal(sps.frameRate, 25);
    const config = parseAvcConfig(buildAvcConfig({ sps: [spsNal], pps: [ppsNal] }));
    assert.equal(avcCodecString(config), avcCodecString(sps));
    const firstIdr = nals.findIndex((n) => h264NalType(n) === H264NalType.IDR);
    assert.ok(firstIdr > 0);
    assert.equal(isH264Keyframe(lengthPrefixedFromNalUnits(nals.slice(0, firstIdr + 1))), true);
  });
}

test.ffmpeg("fuzz: H.264 SPS and avcC parsers return or throw RangeError", async () => {
  const path = await makeFixture("x264-1920x1080-high.h264", [
    ...testsrc({ size: "1920x1080", rate: 25, duration: 0.2 }),
    ...[
      "-c:v",
      "libx264",
      "-profile:v",
      "high",
      "-preset",
      "veryfast",
      "-pix_fmt",
      "yuv420p",
      "-f",
      "h264",
    ],
  ]);
  const nals = splitAnnexB(await Deno.readFile(path));
  const spsNal = nals.find((n) => h264NalType(n) === H264NalType.SPS)!;
  const ppsNal = nals.find((n) => h264NalType(n) === H264NalType.PPS)!;
  fuzzParser("parseH264Sps", parseH264Sps, spsNal, { keepPrefix: 2 });
  fuzzParser("parseH264Sps/baseline", parseH264Sps, BASELINE_SPS, { keepPrefix: 1 });
  const record = buildAvcConfig({ sps: [spsNal], pps: [ppsNal] });
  fuzzParser("parseAvcConfig", parseAvcConfig, record, { keepPrefix: 1 });
  fuzzParser("buildAvcConfig", (d) => buildAvcConfig({ sps: [d], pps: [ppsNal] }), spsNal, {
    keepPrefix: 2,
  });
});
