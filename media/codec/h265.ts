/**
 * H.265 / HEVC bitstream facts: NAL unit types, sequence parameter sets,
 * HEVCDecoderConfigurationRecord (ISO/IEC 14496-15) and RFC 6381 codec strings.
 *
 * @module
 */

import { BitReader, unescapeRbsp } from "./bits.ts";
import { readNalList, writeNalList } from "./_nal_list.ts";
import { hasNalUnit } from "./nal.ts";

/** H.265 NAL unit types (ITU-T H.265 table 7-1) used by the muxers. */
export const H265NalType = {
  /** First IRAP type (BLA_W_LP); IRAP pictures are types 16..23. */
  IRAP_FIRST: 16,
  /** Last IRAP type (RSV_IRAP_VCL23). */
  IRAP_LAST: 23,
  /** IDR picture with RADL pictures. */
  IDR_W_RADL: 19,
  /** IDR picture without leading pictures. */
  IDR_N_LP: 20,
  /** Clean random access picture. */
  CRA: 21,
  /** Video parameter set. */
  VPS: 32,
  /** Sequence parameter set. */
  SPS: 33,
  /** Picture parameter set. */
  PPS: 34,
  /** Access unit delimiter. */
  AUD: 35,
  /** Prefix SEI. */
  PREFIX_SEI: 39,
  /** Suffix SEI. */
  SUFFIX_SEI: 40,
} as const;

/**
 * The NAL unit type of an H.265 NAL unit (bits 1..6 of its first byte).
 *
 * @example
 * ```ts
 * import { h265NalType } from "./h265.ts";
 *
 * h265NalType(new Uint8Array([0x40, 0x01])); // 32 (VPS)
 * ```
 */
export function h265NalType(nal: Uint8Array): number {
  return (nal[0] >> 1) & 0x3f;
}

/** The general profile, tier and level of an H.265 stream. */
export interface H265ProfileTierLevel {
  /** general_profile_space (0..3). */
  profileSpace: number;
  /** general_tier_flag (0 = Main tier, 1 = High tier). */
  tier: number;
  /** general_profile_idc. */
  profile: number;
  /** general_profile_compatibility_flags as a 32-bit unsigned integer (flag 0 is the MSB). */
  compatibility: number;
  /** The 48 constraint indicator bits (progressive_source_flag first), 6 bytes. */
  constraints: Uint8Array;
  /** general_level_idc (30 × the level number). */
  level: number;
}

/** A parsed HEVCDecoderConfigurationRecord. */
export interface HevcConfig extends H265ProfileTierLevel {
  /** min_spatial_segmentation_idc. */
  minSpatialSegmentation: number;
  /** parallelismType. */
  parallelismType: number;
  /** chroma_format_idc. */
  chromaFormat: number;
  /** Luma bit depth. */
  bitDepthLuma: number;
  /** Chroma bit depth. */
  bitDepthChroma: number;
  /** avgFrameRate in frames per 256 seconds (0 = unspecified). */
  avgFrameRate: number;
  /** constantFrameRate (0..2). */
  constantFrameRate: number;
  /** numTemporalLayers. */
  numTemporalLayers: number;
  /** temporalIdNested. */
  temporalIdNested: boolean;
  /** Bytes per NAL length prefix in samples (`lengthSizeMinusOne + 1`). */
  lengthSize: number;
  /** Video parameter set NAL units (views into the record). */
  vps: Uint8Array[];
  /** Sequence parameter set NAL units. */
  sps: Uint8Array[];
  /** Picture parameter set NAL units. */
  pps: Uint8Array[];
  /** SEI NAL units carried in the record. */
  sei: Uint8Array[];
}

/** Fields of an H.265 sequence parameter set (ITU-T H.265 7.3.2.2). */
export interface H265Sps extends H265ProfileTierLevel {
  /** sps_video_parameter_set_id. */
  vpsId: number;
  /** sps_max_sub_layers_minus1 + 1. */
  maxSubLayers: number;
  /** sps_temporal_id_nesting_flag. */
  temporalIdNesting: boolean;
  /** sps_seq_parameter_set_id. */
  spsId: number;
  /** chroma_format_idc. */
  chromaFormat: number;
  /** Luma bit depth. */
  bitDepthLuma: number;
  /** Chroma bit depth. */
  bitDepthChroma: number;
  /** log2_max_pic_order_cnt_lsb_minus4 + 4. */
  log2MaxPocLsb: number;
  /** Picture width in luma samples after the conformance window. */
  width: number;
  /** Picture height in luma samples after the conformance window. */
  height: number;
  /** Frames per second from VUI timing info, when signalled. */
  frameRate?: number;
  /** VUI min_spatial_segmentation_idc (0 when not signalled). */
  minSpatialSegmentation: number;
}

/**
 * Parses an H.265 sequence parameter set NAL unit (with its 2-byte header).
 *
 * @throws {RangeError} when the SPS is truncated or has out-of-range fields.
 * @example
 * ```ts
 * import { parseH265Sps } from "./h265.ts";
 *
 * function size(spsNal: Uint8Array): string {
 *   const { width, height } = parseH265Sps(spsNal);
 *   return `${width}x${height}`;
 * }
 * ```
 */
export function parseH265Sps(nal: Uint8Array): H265Sps {
  if (nal.length < 3) throw new RangeError(`H.265 SPS too short (${nal.length} bytes)`);
  if (h265NalType(nal) !== H265NalType.SPS) {
    throw new RangeError(`not an H.265 SPS (NAL type ${h265NalType(nal)})`);
  }
  const r = new BitReader(unescapeRbsp(nal.subarray(2)));
  const vpsId = r.readBits(4);
  const maxSubLayersMinus1 = bounded(r.readBits(3), 6, "sps_max_sub_layers_minus1");
  const temporalIdNesting = r.readFlag();
  const ptl = readProfileTierLevel(r, maxSubLayersMinus1);
  const spsId = bounded(r.readUE(), 15, "sps_seq_parameter_set_id");
  const chromaFormat = bounded(r.readUE(), 3, "chroma_format_idc");
  const separateColourPlane = chromaFormat === 3 ? r.readFlag() : false;
  let width = bounded(r.readUE(), 16888, "pic_width_in_luma_samples");
  let height = bounded(r.readUE(), 16888, "pic_height_in_luma_samples");
  if (width === 0 || height === 0) throw new RangeError("H.265 SPS has a zero picture size");
  if (r.readFlag()) { // conformance_window_flag
    const chromaArrayType = separateColourPlane ? 0 : chromaFormat;
    const subWidthC = chromaArrayType === 1 || chromaArrayType === 2 ? 2 : 1;
    const subHeightC = chromaArrayType === 1 ? 2 : 1;
    const left = r.readUE(), right = r.readUE(), top = r.readUE(), bottom = r.readUE();
    width -= subWidthC * (left + right);
    height -= subHeightC * (top + bottom);
    if (width <= 0 || height <= 0) {
      throw new RangeError("H.265 SPS conformance window exceeds the picture");
    }
  }
  const bitDepthLuma = bounded(r.readUE(), 8, "bit_depth_luma_minus8") + 8;
  const bitDepthChroma = bounded(r.readUE(), 8, "bit_depth_chroma_minus8") + 8;
  const log2MaxPocLsb = bounded(r.readUE(), 12, "log2_max_pic_order_cnt_lsb_minus4") + 4;
  const sps: H265Sps = {
    ...ptl,
    vpsId,
    maxSubLayers: maxSubLayersMinus1 + 1,
    temporalIdNesting,
    spsId,
    chromaFormat,
    bitDepthLuma,
    bitDepthChroma,
    log2MaxPocLsb,
    width,
    height,
    minSpatialSegmentation: 0,
  };
  const orderingInfoPresent = r.readFlag();
  for (let i = orderingInfoPresent ? 0 : maxSubLayersMinus1; i <= maxSubLayersMinus1; i++) {
    r.readUE(); // sps_max_dec_pic_buffering_minus1
    r.readUE(); // sps_max_num_reorder_pics
    r.readUE(); // sps_max_latency_increase_plus1
  }
  r.readUE(); // log2_min_luma_coding_block_size_minus3
  r.readUE(); // log2_diff_max_min_luma_coding_block_size
  r.readUE(); // log2_min_luma_transform_block_size_minus2
  r.readUE(); // log2_diff_max_min_luma_transform_block_size
  r.readUE(); // max_transform_hierarchy_depth_inter
  r.readUE(); // max_transform_hierarchy_depth_intra
  if (r.readFlag() && r.readFlag()) skipScalingListData(r); // scaling_list_enabled, data present
  r.skipBits(2); // amp_enabled_flag, sample_adaptive_offset_enabled_flag
  if (r.readFlag()) { // pcm_enabled_flag
    r.skipBits(8); // pcm sample bit depths
    r.readUE(); // log2_min_pcm_luma_coding_block_size_minus3
    r.readUE(); // log2_diff_max_min_pcm_luma_coding_block_size
    r.skipBits(1); // pcm_loop_filter_disabled_flag
  }
  skipShortTermRefPicSets(r, bounded(r.readUE(), 64, "num_short_term_ref_pic_sets"));
  if (r.readFlag()) { // long_term_ref_pics_present_flag
    const count = bounded(r.readUE(), 32, "num_long_term_ref_pics_sps");
    for (let i = 0; i < count; i++) r.skipBits(log2MaxPocLsb + 1);
  }
  r.skipBits(2); // sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag
  if (r.readFlag()) parseVui(r, sps, maxSubLayersMinus1);
  return sps;
}

function bounded(value: number, max: number, name: string): number {
  if (value > max) throw new RangeError(`H.265 ${name} ${value} out of range (max ${max})`);
  return value;
}

function readProfileTierLevel(r: BitReader, maxSubLayersMinus1: number): H265ProfileTierLevel {
  const b = r.readBits(8);
  const compatibility = r.readBits(32);
  const constraints = new Uint8Array(6);
  for (let i = 0; i < 6; i++) constraints[i] = r.readBits(8);
  const level = r.readBits(8);
  const profilePresent: boolean[] = [];
  const levelPresent: boolean[] = [];
  for (let i = 0; i < maxSubLayersMinus1; i++) {
    profilePresent.push(r.readFlag());
    levelPresent.push(r.readFlag());
  }
  if (maxSubLayersMinus1 > 0) r.skipBits(2 * (8 - maxSubLayersMinus1));
  for (let i = 0; i < maxSubLayersMinus1; i++) {
    if (profilePresent[i]) r.skipBits(88);
    if (levelPresent[i]) r.skipBits(8);
  }
  return {
    profileSpace: b >> 6,
    tier: (b >> 5) & 1,
    profile: b & 0x1f,
    compatibility,
    constraints,
    level,
  };
}

function skipScalingListData(r: BitReader): void {
  for (let sizeId = 0; sizeId < 4; sizeId++) {
    for (let matrixId = 0; matrixId < 6; matrixId += sizeId === 3 ? 3 : 1) {
      if (!r.readFlag()) {
        r.readUE(); // scaling_list_pred_matrix_id_delta
        continue;
      }
      const coefNum = Math.min(64, 1 << (4 + (sizeId << 1)));
      if (sizeId > 1) r.readSE(); // scaling_list_dc_coef_minus8
      for (let i = 0; i < coefNum; i++) r.readSE();
    }
  }
}

/** Walks st_ref_pic_set() syntax (7.3.7), tracking delta POCs needed for inter-RPS prediction. */
function skipShortTermRefPicSets(r: BitReader, count: number): void {
  const sets: number[][] = []; // each: the delta POCs of one set (negative, then positive)
  for (let idx = 0; idx < count; idx++) {
    if (idx !== 0 && r.readFlag()) { // inter_ref_pic_set_prediction_flag
      const sign = r.readBit();
      const absDelta = bounded(r.readUE(), 32767, "abs_delta_rps_minus1") + 1;
      const deltaRps = sign ? -absDelta : absDelta;
      const ref = sets[idx - 1];
      const next: number[] = [];
      for (let j = 0; j <= ref.length; j++) {
        const used = r.readFlag();
        const useDelta = used ? true : r.readFlag();
        const dPoc = (j < ref.length ? ref[j] : 0) + deltaRps;
        if (useDelta && dPoc !== 0) next.push(dPoc);
      }
      if (next.length > 32) throw new RangeError("H.265 short-term RPS has too many pictures");
      sets.push(next);
    } else {
      const negative = bounded(r.readUE(), 16, "num_negative_pics");
      const positive = bounded(r.readUE(), 16, "num_positive_pics");
      const deltas: number[] = [];
      let poc = 0;
      for (let i = 0; i < negative; i++) {
        poc -= r.readUE() + 1;
        r.skipBits(1); // used_by_curr_pic_s0_flag
        deltas.push(poc);
      }
      poc = 0;
      for (let i = 0; i < positive; i++) {
        poc += r.readUE() + 1;
        r.skipBits(1); // used_by_curr_pic_s1_flag
        deltas.push(poc);
      }
      sets.push(deltas);
    }
  }
}

function parseVui(r: BitReader, sps: H265Sps, maxSubLayersMinus1: number): void {
  if (r.readFlag()) { // aspect_ratio_info_present_flag
    if (r.readBits(8) === 255) r.skipBits(32);
  }
  if (r.readFlag()) r.skipBits(1); // overscan_info_present_flag
  if (r.readFlag()) { // video_signal_type_present_flag
    r.skipBits(4);
    if (r.readFlag()) r.skipBits(24);
  }
  if (r.readFlag()) { // chroma_loc_info_present_flag
    r.readUE();
    r.readUE();
  }
  r.skipBits(3); // neutral_chroma_indication, field_seq, frame_field_info_present
  if (r.readFlag()) { // default_display_window_flag
    for (let i = 0; i < 4; i++) r.readUE();
  }
  if (r.readFlag()) { // vui_timing_info_present_flag
    const numUnitsInTick = r.readBits(32);
    const timeScale = r.readBits(32);
    if (numUnitsInTick > 0 && timeScale > 0) sps.frameRate = timeScale / numUnitsInTick;
    if (r.readFlag()) r.readUE(); // poc_proportional_to_timing → num_ticks_poc_diff_one_minus1
    if (r.readFlag()) skipHrd(r, maxSubLayersMinus1);
  }
  if (r.readFlag()) { // bitstream_restriction_flag
    r.skipBits(3);
    sps.minSpatialSegmentation = bounded(r.readUE(), 4095, "min_spatial_segmentation_idc");
  }
}

function skipHrd(r: BitReader, maxSubLayersMinus1: number): void {
  const nal = r.readFlag();
  const vcl = r.readFlag();
  let subPic = false;
  if (nal || vcl) {
    subPic = r.readFlag();
    if (subPic) r.skipBits(19);
    r.skipBits(8); // bit_rate_scale, cpb_size_scale
    if (subPic) r.skipBits(4);
    r.skipBits(15);
  }
  for (let i = 0; i <= maxSubLayersMinus1; i++) {
    const fixedGeneral = r.readFlag();
    const fixedWithinCvs = fixedGeneral ? true : r.readFlag();
    let lowDelay = false;
    if (fixedWithinCvs) r.readUE();
    else lowDelay = r.readFlag();
    const cpbCount = lowDelay ? 1 : bounded(r.readUE(), 31, "cpb_cnt_minus1") + 1;
    for (let n = (nal ? 1 : 0) + (vcl ? 1 : 0); n > 0; n--) {
      for (let k = 0; k < cpbCount; k++) {
        r.readUE();
        r.readUE();
        if (subPic) {
          r.readUE();
          r.readUE();
        }
        r.skipBits(1);
      }
    }
  }
}

/**
 * Parses an HEVCDecoderConfigurationRecord (`hvcC` box body, Enhanced FLV
 * sequence start).
 *
 * @throws {RangeError} when the record is truncated or not version 1.
 * @example
 * ```ts
 * import { parseHevcConfig } from "./h265.ts";
 *
 * function parameterSetCount(record: Uint8Array): number {
 *   const { vps, sps, pps } = parseHevcConfig(record);
 *   return vps.length + sps.length + pps.length;
 * }
 * ```
 */
export function parseHevcConfig(record: Uint8Array): HevcConfig {
  if (record.length < 23) throw new RangeError(`hvcC too short (${record.length} bytes)`);
  if (record[0] !== 1) throw new RangeError(`hvcC configurationVersion ${record[0]} is not 1`);
  const dv = new DataView(record.buffer, record.byteOffset, record.byteLength);
  const config: HevcConfig = {
    profileSpace: record[1] >> 6,
    tier: (record[1] >> 5) & 1,
    profile: record[1] & 0x1f,
    compatibility: dv.getUint32(2),
    constraints: record.slice(6, 12),
    level: record[12],
    minSpatialSegmentation: dv.getUint16(13) & 0x0fff,
    parallelismType: record[15] & 3,
    chromaFormat: record[16] & 3,
    bitDepthLuma: (record[17] & 7) + 8,
    bitDepthChroma: (record[18] & 7) + 8,
    avgFrameRate: dv.getUint16(19),
    constantFrameRate: record[21] >> 6,
    numTemporalLayers: (record[21] >> 3) & 7,
    temporalIdNested: (record[21] & 4) !== 0,
    lengthSize: (record[21] & 3) + 1,
    vps: [],
    sps: [],
    pps: [],
    sei: [],
  };
  const arrays = record[22];
  let pos = 23;
  for (let a = 0; a < arrays; a++) {
    if (pos + 3 > record.length) throw new RangeError(`hvcC truncated in NAL array ${a}`);
    const type = record[pos] & 0x3f;
    const count = dv.getUint16(pos + 1);
    pos += 3;
    const into = type === H265NalType.VPS
      ? config.vps
      : type === H265NalType.SPS
      ? config.sps
      : type === H265NalType.PPS
      ? config.pps
      : type === H265NalType.PREFIX_SEI || type === H265NalType.SUFFIX_SEI
      ? config.sei
      : undefined;
    pos = readNalList(record, pos, count, into, `hvcC NAL array ${a}`);
  }
  return config;
}

/**
 * Builds an HEVCDecoderConfigurationRecord with 4-byte NAL lengths from
 * parameter sets; profile, tier, level, chroma format and bit depths come from
 * the first SPS.
 *
 * @throws {RangeError} when there is no VPS/SPS/PPS or the SPS is invalid.
 * @example
 * ```ts
 * import { buildHevcConfig } from "./h265.ts";
 *
 * function record(vps: Uint8Array, sps: Uint8Array, pps: Uint8Array): Uint8Array {
 *   return buildHevcConfig({ vps: [vps], sps: [sps], pps: [pps] });
 * }
 * ```
 */
export function buildHevcConfig(
  sets: {
    vps: readonly Uint8Array[];
    sps: readonly Uint8Array[];
    pps: readonly Uint8Array[];
    sei?: readonly Uint8Array[];
  },
): Uint8Array {
  const { vps, sps, pps } = sets;
  const sei = sets.sei ?? [];
  if (vps.length === 0 || sps.length === 0 || pps.length === 0) {
    throw new RangeError("hvcC needs at least one VPS, SPS and PPS");
  }
  const s = parseH265Sps(sps[0]);
  const groups: [number, readonly Uint8Array[]][] = [
    [H265NalType.VPS, vps],
    [H265NalType.SPS, sps],
    [H265NalType.PPS, pps],
  ];
  if (sei.length > 0) groups.push([H265NalType.PREFIX_SEI, sei]);
  let size = 23;
  for (const [, nals] of groups) {
    if (nals.length > 0xffff) throw new RangeError("hvcC: too many NAL units in one array");
    size += 3;
    for (const nal of nals) {
      if (nal.length > 0xffff) throw new RangeError("hvcC: NAL unit longer than 65535 bytes");
      size += 2 + nal.length;
    }
  }
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  out[0] = 1;
  out[1] = (s.profileSpace << 6) | (s.tier << 5) | s.profile;
  dv.setUint32(2, s.compatibility);
  out.set(s.constraints, 6);
  out[12] = s.level;
  dv.setUint16(13, 0xf000 | s.minSpatialSegmentation);
  out[15] = 0xfc; // parallelismType unknown
  out[16] = 0xfc | s.chromaFormat;
  out[17] = 0xf8 | (s.bitDepthLuma - 8);
  out[18] = 0xf8 | (s.bitDepthChroma - 8);
  dv.setUint16(19, 0); // avgFrameRate unspecified
  out[21] = (s.maxSubLayers << 3) | (s.temporalIdNesting ? 4 : 0) | 3;
  out[22] = groups.length;
  let pos = 23;
  for (const [type, nals] of groups) {
    out[pos] = 0x80 | type; // array_completeness = 1
    dv.setUint16(pos + 1, nals.length);
    pos = writeNalList(out, pos + 3, nals);
  }
  return out;
}

/**
 * Whether a length-prefixed H.265 access unit contains an IRAP picture
 * (NAL types 16..23: BLA, IDR, CRA).
 *
 * @example
 * ```ts
 * import { isH265Keyframe } from "./h265.ts";
 *
 * isH265Keyframe(new Uint8Array([0, 0, 0, 3, 0x26, 0x01, 0xaf])); // true (IDR_W_RADL)
 * ```
 */
export function isH265Keyframe(au: Uint8Array): boolean {
  return hasNalUnit(au, isIrapHeader);
}

function isIrapHeader(header: number): boolean {
  const type = (header >> 1) & 0x3f;
  return type >= H265NalType.IRAP_FIRST && type <= H265NalType.IRAP_LAST;
}

/**
 * The RFC 6381 / ISO/IEC 14496-15 Annex E codec string (`hvc1.1.6.L93.B0`)
 * for a configuration or an SPS.
 *
 * @example
 * ```ts
 * import { hevcCodecString } from "./h265.ts";
 *
 * hevcCodecString({
 *   profileSpace: 0,
 *   tier: 0,
 *   profile: 1,
 *   compatibility: 0x60000000,
 *   constraints: new Uint8Array([0xb0, 0, 0, 0, 0, 0]),
 *   level: 93,
 * }); // "hvc1.1.6.L93.B0"
 * ```
 */
export function hevcCodecString(config: H265ProfileTierLevel): string {
  const space = ["", "A", "B", "C"][config.profileSpace];
  // general_profile_compatibility_flags in reverse bit order, as hex without leading zeros
  let reversed = 0;
  for (let i = 0; i < 32; i++) {
    if ((config.compatibility >>> i) & 1) reversed |= 1 << (31 - i);
  }
  let s = `hvc1.${space}${config.profile}.${(reversed >>> 0).toString(16)}.${
    config.tier ? "H" : "L"
  }${config.level}`;
  let last = config.constraints.length;
  while (last > 0 && config.constraints[last - 1] === 0) last--;
  for (let i = 0; i < last; i++) s += `.${config.constraints[i].toString(16).toUpperCase()}`;
  return s;
}
