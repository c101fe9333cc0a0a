/**
 * H.264 / AVC bitstream facts: NAL unit types, sequence parameter sets,
 * AVCDecoderConfigurationRecord (ISO/IEC 14496-15) and RFC 6381 codec strings.
 *
 * @module
 */

import { BitReader, unescapeRbsp } from "./bits.ts";
import { readNalList, writeNalList } from "./_nal_list.ts";
import { hasNalUnit } from "./nal.ts";

/** H.264 NAL unit types (ITU-T H.264 table 7-1) used by the muxers. */
export const H264NalType = {
  /** Coded slice of a non-IDR picture. */
  SLICE: 1,
  /** Coded slice of an IDR picture (a keyframe). */
  IDR: 5,
  /** Supplemental enhancement information. */
  SEI: 6,
  /** Sequence parameter set. */
  SPS: 7,
  /** Picture parameter set. */
  PPS: 8,
  /** Access unit delimiter. */
  AUD: 9,
} as const;

/**
 * The NAL unit type of an H.264 NAL unit (low 5 bits of its first byte).
 *
 * @example
 * ```ts
 * import { h264NalType } from "./h264.ts";
 *
 * h264NalType(new Uint8Array([0x67, 0x42])); // 7 (SPS)
 * ```
 */
export function h264NalType(nal: Uint8Array): number {
  return nal[0] & 0x1f;
}

/** A parsed AVCDecoderConfigurationRecord. */
export interface AvcConfig {
  /** `AVCProfileIndication` (profile_idc). */
  profile: number;
  /** `profile_compatibility` (the constraint_set flags byte). */
  compatibility: number;
  /** `AVCLevelIndication` (level_idc). */
  level: number;
  /** Bytes per NAL length prefix in samples (`lengthSizeMinusOne + 1`). */
  lengthSize: number;
  /** Sequence parameter set NAL units (views into the record). */
  sps: Uint8Array[];
  /** Picture parameter set NAL units (views into the record). */
  pps: Uint8Array[];
  /** chroma_format_idc from the high-profile extension, when present. */
  chromaFormat?: number;
  /** Luma bit depth from the high-profile extension, when present. */
  bitDepthLuma?: number;
  /** Chroma bit depth from the high-profile extension, when present. */
  bitDepthChroma?: number;
}

/** Fields of an H.264 sequence parameter set (ITU-T H.264 7.3.2.1). */
export interface H264Sps {
  /** profile_idc. */
  profile: number;
  /** The constraint_set flags byte (`profile_compatibility` in avcC). */
  compatibility: number;
  /** level_idc. */
  level: number;
  /** seq_parameter_set_id. */
  spsId: number;
  /** chroma_format_idc (1 = 4:2:0 when not signalled). */
  chromaFormat: number;
  /** separate_colour_plane_flag. */
  separateColourPlane: boolean;
  /** Luma bit depth (8 when not signalled). */
  bitDepthLuma: number;
  /** Chroma bit depth (8 when not signalled). */
  bitDepthChroma: number;
  /** log2_max_frame_num_minus4 + 4. */
  log2MaxFrameNum: number;
  /** pic_order_cnt_type (0, 1 or 2). */
  pocType: number;
  /** log2_max_pic_order_cnt_lsb_minus4 + 4 (POC type 0 only, else 0). */
  log2MaxPocLsb: number;
  /** delta_pic_order_always_zero_flag (POC type 1). */
  deltaPicOrderAlwaysZero: boolean;
  /** offset_for_non_ref_pic (POC type 1). */
  offsetForNonRefPic: number;
  /** offset_for_top_to_bottom_field (POC type 1). */
  offsetForTopToBottomField: number;
  /** offset_for_ref_frame[] (POC type 1). */
  offsetForRefFrame: number[];
  /** max_num_ref_frames. */
  maxNumRefFrames: number;
  /** frame_mbs_only_flag. */
  frameMbsOnly: boolean;
  /** Cropped picture width in luma samples. */
  width: number;
  /** Cropped picture height in luma samples. */
  height: number;
  /** Frames per second from VUI timing info, when signalled. */
  frameRate?: number;
  /** VUI max_num_reorder_frames, when signalled. */
  maxNumReorderFrames?: number;
}

const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

/**
 * Parses an H.264 sequence parameter set NAL unit (with its header byte, with
 * or without emulation-prevention bytes removed).
 *
 * @throws {RangeError} when the SPS is truncated or has out-of-range fields.
 * @example
 * ```ts
 * import { parseH264Sps } from "./h264.ts";
 *
 * // Baseline 3.0, 320x240 (Annex-B start code already removed)
 * const sps = parseH264Sps(new Uint8Array([0x67, 0x42, 0xc0, 0x1e, 0xda, 0x05, 0x07, 0xe4]));
 * [sps.width, sps.height]; // [320, 240]
 * ```
 */
export function parseH264Sps(nal: Uint8Array): H264Sps {
  if (nal.length < 4) throw new RangeError(`H.264 SPS too short (${nal.length} bytes)`);
  if ((nal[0] & 0x1f) !== H264NalType.SPS) {
    throw new RangeError(`not an H.264 SPS (NAL type ${nal[0] & 0x1f})`);
  }
  const r = new BitReader(unescapeRbsp(nal.subarray(1)));
  const profile = r.readBits(8);
  const compatibility = r.readBits(8);
  const level = r.readBits(8);
  const spsId = bounded(r.readUE(), 31, "seq_parameter_set_id");
  let chromaFormat = 1;
  let separateColourPlane = false;
  let bitDepthLuma = 8;
  let bitDepthChroma = 8;
  if (HIGH_PROFILES.has(profile)) {
    chromaFormat = bounded(r.readUE(), 3, "chroma_format_idc");
    if (chromaFormat === 3) separateColourPlane = r.readFlag();
    bitDepthLuma = bounded(r.readUE(), 6, "bit_depth_luma_minus8") + 8;
    bitDepthChroma = bounded(r.readUE(), 6, "bit_depth_chroma_minus8") + 8;
    r.skipBits(1); // qpprime_y_zero_transform_bypass_flag
    if (r.readFlag()) { // seq_scaling_matrix_present_flag
      const lists = chromaFormat !== 3 ? 8 : 12;
      for (let i = 0; i < lists; i++) {
        if (r.readFlag()) skipScalingList(r, i < 6 ? 16 : 64);
      }
    }
  }
  const log2MaxFrameNum = bounded(r.readUE(), 12, "log2_max_frame_num_minus4") + 4;
  const pocType = bounded(r.readUE(), 2, "pic_order_cnt_type");
  let log2MaxPocLsb = 0;
  let deltaPicOrderAlwaysZero = false;
  let offsetForNonRefPic = 0;
  let offsetForTopToBottomField = 0;
  const offsetForRefFrame: number[] = [];
  if (pocType === 0) {
    log2MaxPocLsb = bounded(r.readUE(), 12, "log2_max_pic_order_cnt_lsb_minus4") + 4;
  } else if (pocType === 1) {
    deltaPicOrderAlwaysZero = r.readFlag();
    offsetForNonRefPic = r.readSE();
    offsetForTopToBottomField = r.readSE();
    const cycle = bounded(r.readUE(), 255, "num_ref_frames_in_pic_order_cnt_cycle");
    for (let i = 0; i < cycle; i++) offsetForRefFrame.push(r.readSE());
  }
  const maxNumRefFrames = bounded(r.readUE(), 32, "max_num_ref_frames");
  r.skipBits(1); // gaps_in_frame_num_value_allowed_flag
  const widthMbs = bounded(r.readUE(), 8191, "pic_width_in_mbs_minus1") + 1;
  const heightMapUnits = bounded(r.readUE(), 8191, "pic_height_in_map_units_minus1") + 1;
  const frameMbsOnly = r.readFlag();
  if (!frameMbsOnly) r.skipBits(1); // mb_adaptive_frame_field_flag
  r.skipBits(1); // direct_8x8_inference_flag
  let width = widthMbs * 16;
  let height = (2 - (frameMbsOnly ? 1 : 0)) * heightMapUnits * 16;
  if (r.readFlag()) { // frame_cropping_flag
    const chromaArrayType = separateColourPlane ? 0 : chromaFormat;
    const subWidthC = chromaArrayType === 1 || chromaArrayType === 2 ? 2 : 1;
    const subHeightC = chromaArrayType === 1 ? 2 : 1;
    const cropUnitX = chromaArrayType === 0 ? 1 : subWidthC;
    const cropUnitY = (chromaArrayType === 0 ? 1 : subHeightC) * (frameMbsOnly ? 1 : 2);
    const left = r.readUE(), right = r.readUE(), top = r.readUE(), bottom = r.readUE();
    width -= cropUnitX * (left + right);
    height -= cropUnitY * (top + bottom);
    if (width <= 0 || height <= 0) throw new RangeError("H.264 SPS cropping exceeds the picture");
  }
  const sps: H264Sps = {
    profile,
    compatibility,
    level,
    spsId,
    chromaFormat,
    separateColourPlane,
    bitDepthLuma,
    bitDepthChroma,
    log2MaxFrameNum,
    pocType,
    log2MaxPocLsb,
    deltaPicOrderAlwaysZero,
    offsetForNonRefPic,
    offsetForTopToBottomField,
    offsetForRefFrame,
    maxNumRefFrames,
    frameMbsOnly,
    width,
    height,
  };
  if (r.readFlag()) parseVui(r, sps);
  return sps;
}

function bounded(value: number, max: number, name: string): number {
  if (value > max) throw new RangeError(`H.264 SPS ${name} ${value} out of range (max ${max})`);
  return value;
}

function skipScalingList(r: BitReader, size: number): void {
  let last = 8;
  let next = 8;
  for (let j = 0; j < size; j++) {
    if (next !== 0) next = (last + r.readSE() + 256) % 256;
    last = next === 0 ? last : next;
  }
}

function parseVui(r: BitReader, sps: H264Sps): void {
  if (r.readFlag()) { // aspect_ratio_info_present_flag
    if (r.readBits(8) === 255) r.skipBits(32); // Extended_SAR: sar_width, sar_height
  }
  if (r.readFlag()) r.skipBits(1); // overscan_info_present_flag → overscan_appropriate_flag
  if (r.readFlag()) { // video_signal_type_present_flag
    r.skipBits(4); // video_format, video_full_range_flag
    if (r.readFlag()) r.skipBits(24); // colour_description_present_flag
  }
  if (r.readFlag()) { // chroma_loc_info_present_flag
    r.readUE();
    r.readUE();
  }
  if (r.readFlag()) { // timing_info_present_flag
    const numUnitsInTick = r.readBits(32);
    const timeScale = r.readBits(32);
    r.skipBits(1); // fixed_frame_rate_flag
    if (numUnitsInTick > 0 && timeScale > 0) sps.frameRate = timeScale / (2 * numUnitsInTick);
  }
  const nalHrd = r.readFlag();
  if (nalHrd) skipHrd(r);
  const vclHrd = r.readFlag();
  if (vclHrd) skipHrd(r);
  if (nalHrd || vclHrd) r.skipBits(1); // low_delay_hrd_flag
  r.skipBits(1); // pic_struct_present_flag
  if (r.readFlag()) { // bitstream_restriction_flag
    r.skipBits(1); // motion_vectors_over_pic_boundaries_flag
    r.readUE(); // max_bytes_per_pic_denom
    r.readUE(); // max_bits_per_mb_denom
    r.readUE(); // log2_max_mv_length_horizontal
    r.readUE(); // log2_max_mv_length_vertical
    sps.maxNumReorderFrames = bounded(r.readUE(), 16, "max_num_reorder_frames");
    r.readUE(); // max_dec_frame_buffering
  }
}

function skipHrd(r: BitReader): void {
  const cpbCount = bounded(r.readUE(), 31, "cpb_cnt_minus1") + 1;
  r.skipBits(8); // bit_rate_scale, cpb_size_scale
  for (let i = 0; i < cpbCount; i++) {
    r.readUE(); // bit_rate_value_minus1
    r.readUE(); // cpb_size_value_minus1
    r.skipBits(1); // cbr_flag
  }
  r.skipBits(20); // four 5-bit delay/offset lengths
}

/**
 * Parses an AVCDecoderConfigurationRecord (`avcC` box body, FLV AVC sequence header).
 *
 * @throws {RangeError} when the record is truncated or not version 1.
 * @example
 * ```ts
 * import { buildAvcConfig, parseAvcConfig } from "./h264.ts";
 *
 * const sps = new Uint8Array([0x67, 0x42, 0xc0, 0x1e, 0xda, 0x05, 0x07, 0xe4]);
 * const pps = new Uint8Array([0x68, 0xce, 0x3c, 0x80]);
 * parseAvcConfig(buildAvcConfig({ sps: [sps], pps: [pps] })).profile; // 66
 * ```
 */
export function parseAvcConfig(record: Uint8Array): AvcConfig {
  if (record.length < 7) throw new RangeError(`avcC too short (${record.length} bytes)`);
  if (record[0] !== 1) throw new RangeError(`avcC configurationVersion ${record[0]} is not 1`);
  const config: AvcConfig = {
    profile: record[1],
    compatibility: record[2],
    level: record[3],
    lengthSize: (record[4] & 3) + 1,
    sps: [],
    pps: [],
  };
  let pos = readNalList(record, 6, record[5] & 0x1f, config.sps, "avcC SPS list");
  if (pos >= record.length) throw new RangeError("avcC truncated before the PPS count");
  pos = readNalList(record, pos + 1, record[pos], config.pps, "avcC PPS list");
  if (HIGH_PROFILES.has(config.profile) && record.length - pos >= 4) {
    config.chromaFormat = record[pos] & 3;
    config.bitDepthLuma = (record[pos + 1] & 7) + 8;
    config.bitDepthChroma = (record[pos + 2] & 7) + 8;
  }
  return config;
}

/**
 * Builds an AVCDecoderConfigurationRecord with 4-byte NAL lengths from
 * parameter sets. Profile, compatibility and level come from the first SPS;
 * high profiles get the chroma format and bit depth extension.
 *
 * @throws {RangeError} when there is no SPS or a parameter set is too large or invalid.
 * @example
 * ```ts
 * import { buildAvcConfig } from "./h264.ts";
 *
 * const sps = new Uint8Array([0x67, 0x42, 0xc0, 0x1e, 0xda, 0x05, 0x07, 0xe4]);
 * const pps = new Uint8Array([0x68, 0xce, 0x3c, 0x80]);
 * buildAvcConfig({ sps: [sps], pps: [pps] }).length; // 23
 * ```
 */
export function buildAvcConfig(
  sets: { sps: readonly Uint8Array[]; pps: readonly Uint8Array[] },
): Uint8Array {
  const { sps, pps } = sets;
  if (sps.length === 0 || sps[0].length < 4) throw new RangeError("avcC needs at least one SPS");
  if (sps.length > 31 || pps.length > 255) throw new RangeError("avcC: too many parameter sets");
  const first = sps[0];
  const high = HIGH_PROFILES.has(first[1]);
  const parsed = high ? parseH264Sps(first) : undefined;
  let size = 7 + (high ? 4 : 0);
  for (const s of [...sps, ...pps]) {
    if (s.length > 0xffff) throw new RangeError("avcC: parameter set longer than 65535 bytes");
    size += 2 + s.length;
  }
  const out = new Uint8Array(size);
  out[0] = 1;
  out[1] = first[1];
  out[2] = first[2];
  out[3] = first[3];
  out[4] = 0xff; // reserved 6 bits + lengthSizeMinusOne = 3
  out[5] = 0xe0 | sps.length;
  let pos = writeNalList(out, 6, sps);
  out[pos++] = pps.length;
  pos = writeNalList(out, pos, pps);
  if (parsed) {
    out[pos++] = 0xfc | parsed.chromaFormat;
    out[pos++] = 0xf8 | (parsed.bitDepthLuma - 8);
    out[pos++] = 0xf8 | (parsed.bitDepthChroma - 8);
    out[pos++] = 0; // numOfSequenceParameterSetExt
  }
  return out;
}

/**
 * Whether a length-prefixed H.264 access unit contains an IDR slice.
 *
 * @example
 * ```ts
 * import { isH264Keyframe } from "./h264.ts";
 *
 * isH264Keyframe(new Uint8Array([0, 0, 0, 2, 0x65, 0x88])); // true
 * ```
 */
export function isH264Keyframe(au: Uint8Array): boolean {
  return hasNalUnit(au, isIdrHeader);
}

function isIdrHeader(header: number): boolean {
  return (header & 0x1f) === H264NalType.IDR;
}

/**
 * The RFC 6381 codec string (`avc1.PPCCLL`) for a configuration or an SPS.
 *
 * @example
 * ```ts
 * import { avcCodecString } from "./h264.ts";
 *
 * avcCodecString({ profile: 100, compatibility: 0, level: 31 }); // "avc1.64001f"
 * ```
 */
export function avcCodecString(
  config: Pick<AvcConfig | H264Sps, "profile" | "compatibility" | "level">,
): string {
  return `avc1.${hex2(config.profile)}${hex2(config.compatibility)}${hex2(config.level)}`;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, "0");
}
