import assert from "node:assert/strict";
import { BitWriter, escapeRbsp } from "../../../media/codec/bits.ts";
import {
  buildHevcConfig,
  H265NalType,
  h265NalType,
  hevcCodecString,
  isH265Keyframe,
  parseH265Sps,
  parseHevcConfig,
} from "../../../media/codec/h265.ts";
import { lengthPrefixedFromNalUnits, splitAnnexB } from "../../../media/codec/nal.ts";
import { makeFixture, probePackets, testsrc } from "../../_util/ffmpeg.ts";
import { fuzzParser } from "../../_util/fuzz.ts";
import { findBox } from "./_mp4.ts";
import { canRun, testsWith } from "../../_util/tools.ts";

const test = await testsWith({ x265: ["ffmpeg", "ffprobe", "ffmpeg:libx265"] });

const x265 = await canRun("ffmpeg", "ffprobe", "ffmpeg:libx265");

/** An SPS written field by field from H.265 7.3.2.2 with two sub-layers, RPS prediction and VUI. */
function handSps(): Uint8Array {
  const w = new BitWriter();
  w.writeBits(0, 4); // vps id
  w.writeBits(1, 3); // max_sub_layers_minus1
  w.writeBits(1, 1); // temporal_id_nesting
  // profile_tier_level(1, 1)
  w.writeBits(0, 2); // profile space
  w.writeBits(1, 1); // high tier
  w.writeBits(2, 5); // Main 10
  w.writeBits(0x20000000, 32); // compatibility flag 2
  w.writeBits(0xb0, 8); // progressive, non-packed, frame-only
  w.writeBits(0, 32);
  w.writeBits(0, 8);
  w.writeBits(120, 8); // level 4
  w.writeBits(1, 1); // sub_layer_profile_present_flag[0]
  w.writeBits(1, 1); // sub_layer_level_present_flag[0]
  w.writeBits(0, 2 * 7); // reserved_zero_2bits for i = 1..7
  w.writeBits(0, 32);
  w.writeBits(0, 32);
  w.writeBits(0, 24); // 88 bits of sub-layer profile
  w.writeBits(90, 8); // sub-layer level
  w.writeUE(0); // sps id
  w.writeUE(1); // chroma 4:2:0
  w.writeUE(1928); // width
  w.writeUE(1088); // height
  w.writeBits(1, 1); // conformance window
  for (const v of [0, 4, 0, 4]) w.writeUE(v); // right 8, bottom 8 luma samples
  w.writeUE(2); // bit depth luma 10
  w.writeUE(2);
  w.writeUE(4); // log2_max_poc_lsb 8
  w.writeBits(1, 1); // sub_layer_ordering_info_present
  for (let i = 0; i < 2; i++) for (const v of [4, 2, 0]) w.writeUE(v);
  for (const v of [0, 3, 0, 3, 1, 1]) w.writeUE(v);
  w.writeBits(1, 1); // scaling_list_enabled
  w.writeBits(1, 1); // sps_scaling_list_data_present
  for (let sizeId = 0; sizeId < 4; sizeId++) {
    for (let m = 0; m < 6; m += sizeId === 3 ? 3 : 1) {
      const explicit = m === 0;
      w.writeBits(explicit ? 1 : 0, 1);
      if (!explicit) w.writeUE(0);
      else {
        if (sizeId > 1) w.writeSE(8);
        for (let i = 0; i < Math.min(64, 1 << (4 + (sizeId << 1))); i++) w.writeSE(i % 3 - 1);
      }
    }
  }
  w.writeBits(0b01, 2); // amp, sao
  w.writeBits(1, 1); // pcm
  w.writeBits(0x77, 8);
  w.writeUE(0);
  w.writeUE(1);
  w.writeBits(0, 1);
  w.writeUE(3); // num_short_term_ref_pic_sets
  // set 0: explicit, 2 negative, 1 positive
  w.writeUE(2);
  w.writeUE(1);
  for (const d of [0, 1]) {
    w.writeUE(d);
    w.writeBits(1, 1);
  }
  w.writeUE(1);
  w.writeBits(1, 1);
  // set 1: predicted from set 0 (3 entries + 1)
  w.writeBits(1, 1); // inter_ref_pic_set_prediction_flag
  w.writeBits(1, 1); // delta_rps_sign (-)
  w.writeUE(0); // abs_delta_rps_minus1 → deltaRps = -1
  for (const used of [1, 0, 1, 1]) {
    w.writeBits(used, 1);
    if (!used) w.writeBits(1, 1); // use_delta_flag
  }
  // set 2: predicted from set 1, which must have the right size for this to parse
  w.writeBits(1, 1);
  w.writeBits(0, 1);
  w.writeUE(1); // deltaRps = +2
  for (let j = 0; j < 5; j++) w.writeBits(1, 1); // set 1 has 4 pictures → 5 flags
  w.writeBits(1, 1); // long_term_ref_pics_present
  w.writeUE(2);
  for (let i = 0; i < 2; i++) w.writeBits(i, 8 + 1); // poc lsb (8 bits) + used flag
  w.writeBits(0b11, 2); // temporal mvp, strong intra smoothing
  w.writeBits(1, 1); // vui
  w.writeBits(1, 1); // aspect ratio
  w.writeBits(255, 8);
  w.writeBits(0x00010001, 32);
  w.writeBits(0, 1); // overscan
  w.writeBits(1, 1); // video signal type
  w.writeBits(0b1011, 4);
  w.writeBits(1, 1);
  w.writeBits(0x010101, 24);
  w.writeBits(0, 1); // chroma loc
  w.writeBits(0, 3);
  w.writeBits(1, 1); // default display window
  for (const v of [0, 0, 0, 0]) w.writeUE(v);
  w.writeBits(1, 1); // timing
  w.writeBits(1001, 32);
  w.writeBits(60000, 32);
  w.writeBits(0, 1); // poc proportional
  w.writeBits(1, 1); // hrd
  w.writeBits(1, 1); // nal hrd
  w.writeBits(0, 1); // vcl hrd
  w.writeBits(0, 1); // sub pic
  w.writeBits(0, 8);
  w.writeBits(0, 15);
  for (let i = 0; i < 2; i++) {
    w.writeBits(0, 1); // fixed_pic_rate_general
    w.writeBits(0, 1); // fixed_pic_rate_within_cvs
    w.writeBits(0, 1); // low_delay
    w.writeUE(1); // cpb_cnt_minus1
    for (let k = 0; k < 2; k++) {
      w.writeUE(1000);
      w.writeUE(2000);
      w.writeBits(0, 1);
    }
  }
  w.writeBits(1, 1); // bitstream restriction
  w.writeBits(0, 3);
  w.writeUE(200); // min_spatial_segmentation_idc
  for (let i = 0; i < 4; i++) w.writeUE(1);
  w.writeBits(0, 1); // sps_extension_present
  w.writeBits(1, 1); // stop bit
  return new Uint8Array([0x42, 0x01, ...escapeRbsp(w.bytes())]);
}

Deno.test("H.265 SPS: hand-built fields with RPS prediction, scaling lists and VUI", () => {
  const s = parseH265Sps(handSps());
  assert.equal(s.maxSubLayers, 2);
  assert.equal(s.temporalIdNesting, true);
  assert.deepEqual([s.profileSpace, s.tier, s.profile, s.level], [0, 1, 2, 120]);
  assert.equal(s.compatibility, 0x20000000);
  assert.deepEqual(s.constraints, new Uint8Array([0xb0, 0, 0, 0, 0, 0]));
  assert.deepEqual([s.width, s.height], [1920, 1080]);
  assert.deepEqual([s.bitDepthLuma, s.bitDepthChroma, s.log2MaxPocLsb], [10, 10, 8]);
  assert.ok(Math.abs(s.frameRate! - 59.94) < 0.001);
  assert.equal(s.minSpatialSegmentation, 200);
  assert.equal(hevcCodecString(s), "hvc1.2.4.H120.B0");
  assert.equal(h265NalType(handSps()), H265NalType.SPS);
  assert.throws(() => parseH265Sps(new Uint8Array([0x40, 0x01, 0x0c])), /not an H.265 SPS/);
});

Deno.test("hevcCodecString follows ISO/IEC 14496-15 Annex E", () => {
  const base = {
    profileSpace: 0,
    tier: 0,
    profile: 1,
    compatibility: 0x60000000,
    constraints: new Uint8Array([0xb0, 0, 0, 0, 0, 0]),
    level: 93,
  };
  assert.equal(hevcCodecString(base), "hvc1.1.6.L93.B0");
  assert.equal(
    hevcCodecString({
      ...base,
      profileSpace: 1,
      tier: 1,
      level: 150,
      constraints: new Uint8Array(6),
    }),
    "hvc1.A1.6.H150",
  );
  assert.equal(
    hevcCodecString({ ...base, constraints: new Uint8Array([0x90, 0, 0x10, 0, 0, 0]) }),
    "hvc1.1.6.L93.90.0.10",
  );
});

Deno.test("isH265Keyframe detects IRAP NAL types only", () => {
  const au = (type: number) => lengthPrefixedFromNalUnits([new Uint8Array([type << 1, 1, 0xaf])]);
  for (let t = 0; t < 41; t++) assert.equal(isH265Keyframe(au(t)), t >= 16 && t <= 23, `type ${t}`);
});

const x265Cases = [
  { size: "320x240" },
  { size: "1280x720" },
  { size: "640x358" }, // not a multiple of the minimum CU: conformance window crops it
];

async function x265Stream(size: string) {
  const path = await makeFixture(`x265-${size}.hevc`, [
    ...testsrc({ size, rate: 25, duration: 0.2 }),
    ...["-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p"],
    ...["-x265-params", "log-level=error", "-f", "hevc"],
  ]);
  const nals = splitAnnexB(await Deno.readFile(path));
  const pick = (t: number) => nals.filter((n) => h265NalType(n) === t);
  return {
    path,
    nals,
    vps: pick(H265NalType.VPS),
    sps: pick(H265NalType.SPS),
    pps: pick(H265NalType.PPS),
  };
}

for (const c of x265Cases) {
  test.x265({
    name: `H.265 SPS from libx265 ${c.size} matches ffprobe, hvcC round trips`,
    fn: async () => {
      const { path, nals, vps, sps, pps } = await x265Stream(c.size);
      const s = parseH265Sps(sps[0]);
      const [probe] = await probePackets(path);
      const [w, h] = c.size.split("x").map(Number);
      assert.deepEqual([s.width, s.height], [w, h]);
      assert.deepEqual([probe.info.width, probe.info.height], [w, h]);
      assert.equal(s.profile, 1);
      assert.equal(probe.info.profile, "Main");
      assert.equal(s.level, probe.info.level);
      assert.equal(s.frameRate, 25);
      assert.equal(hevcCodecString(s), `hvc1.1.6.L${s.level}.90`);
      const record = buildHevcConfig({ vps, sps, pps });
      const config = parseHevcConfig(record);
      assert.deepEqual([config.vps, config.sps, config.pps], [vps, sps, pps]);
      assert.deepEqual(
        [config.profile, config.level, config.chromaFormat, config.bitDepthLuma, config.lengthSize],
        [1, s.level, 1, 8, 4],
      );
      assert.equal(hevcCodecString(config), hevcCodecString(s));
      assert.deepEqual(buildHevcConfig(config), record);
      const firstIrap = nals.findIndex((n) => h265NalType(n) >= 16 && h265NalType(n) <= 23);
      assert.equal(isH265Keyframe(lengthPrefixedFromNalUnits(nals.slice(0, firstIrap + 1))), true);
      assert.equal(isH265Keyframe(lengthPrefixedFromNalUnits(nals.slice(0, firstIrap))), false);
    },
  });
}

test.x265({
  name: "hvcC built by us matches the one ffmpeg writes into MP4",
  fn: async () => {
    const { path, vps, sps, pps } = await x265Stream("320x240");
    const mp4 = await makeFixture("x265-320x240.mp4", ["-i", path, "-c", "copy"]);
    const hvcC = findBox(await Deno.readFile(mp4), "hvcC");
    assert.ok(hvcC, "hvcC box not found");
    const theirs = parseHevcConfig(hvcC);
    const ours = parseHevcConfig(buildHevcConfig({ vps, sps, pps }));
    for (
      const k of [
        "profileSpace",
        "tier",
        "profile",
        "compatibility",
        "constraints",
        "level",
        "chromaFormat",
        "bitDepthLuma",
        "bitDepthChroma",
        "numTemporalLayers",
        "temporalIdNested",
        "lengthSize",
        "vps",
        "sps",
        "pps",
      ] as const
    ) {
      assert.deepEqual(ours[k], theirs[k], k);
    }
  },
});

Deno.test("fuzz: H.265 SPS and hvcC parsers return or throw RangeError", async () => {
  fuzzParser("parseH265Sps/hand", parseH265Sps, handSps(), { keepPrefix: 2 });
  if (!x265) return;
  const { vps, sps, pps } = await x265Stream("320x240");
  fuzzParser("parseH265Sps/x265", parseH265Sps, sps[0], { keepPrefix: 2 });
  const record = buildHevcConfig({ vps, sps, pps });
  fuzzParser("parseHevcConfig", parseHevcConfig, record, { keepPrefix: 1 });
  fuzzParser("buildHevcConfig", (d) => buildHevcConfig({ vps, sps: [d], pps }), sps[0], {
    keepPrefix: 2,
  });
});
