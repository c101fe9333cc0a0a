/**
 * Parameter sets and picture order counts of received H.264 and H.265 streams, as a
 * decoder derives them (H.264 8.2.1, H.265 8.3.1), so that decode times can be recovered
 * from RTP's presentation times. Only the slice header fields before the POC are read.
 *
 * @module
 */

import { BitReader, unescapeRbsp } from "../codec/bits.ts";
import {
  buildAvcConfig,
  H264NalType,
  type H264Sps,
  parseAvcConfig,
  parseH264Sps,
} from "../codec/h264.ts";
import {
  buildHevcConfig,
  H265NalType,
  type H265Sps,
  parseH265Sps,
  parseHevcConfig,
} from "../codec/h265.ts";

/** Bytes of a slice NAL unit that always hold the header fields up to the POC. */
const SLICE_HEAD_BYTES = 64;

/** What the video ingest needs from a codec: parameter sets, keyframes and POCs. */
export interface PictureState {
  /** Whether the NAL unit is a parameter set (kept by {@linkcode PictureState.addParameterSet}). */
  isParameterSet(nal: Uint8Array): boolean;
  /** Store a parameter set; true when it is new or replaces a different one with its id. */
  addParameterSet(nal: Uint8Array): boolean;
  /** Start from the parameter sets of a decoder configuration record. */
  seed(record: Uint8Array): void;
  /** A decoder configuration record of the current parameter sets, if complete. */
  record(): Uint8Array | undefined;
  /** The first SPS's width, height, frame rate and codec string, if any. */
  readonly sps: H264Sps | H265Sps | undefined;
  /** Whether the NAL unit starts a coded video sequence (IDR, IRAP). */
  isKeyframe(nal: Uint8Array): boolean;
  /**
   * The picture order count of the picture whose first slice NAL unit this is; undefined
   * for other NAL units and for slices whose parameter sets are unknown or unreadable.
   */
  poc(nal: Uint8Array): number | undefined;
  /** The reorder depth the SPS signals, if it does. */
  readonly reorderHint: number | undefined;
}

/** Parameter sets by id, raw and parsed. */
class SetTable<T> {
  readonly raw = new Map<number, Uint8Array>();
  readonly parsed = new Map<number, T>();

  /** Store `nal` under `id`; true when that changed anything. */
  put(id: number, nal: Uint8Array, parsed: T): boolean {
    const old = this.raw.get(id);
    if (old && equalBytes(old, nal)) return false;
    this.raw.set(id, nal.slice());
    this.parsed.set(id, parsed);
    return true;
  }

  list(): Uint8Array[] {
    return [...this.raw.values()];
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function reader(nal: Uint8Array, headerBytes: number): BitReader {
  return new BitReader(unescapeRbsp(nal.subarray(headerBytes, SLICE_HEAD_BYTES)));
}

interface H264Pps {
  spsId: number;
  bottomFieldPicOrderInFramePresent: boolean;
}

/** H.264 parameter sets and POC derivation (types 0, 1 and 2; MMCO 5 is not tracked). */
export class H264PictureState implements PictureState {
  #sps = new SetTable<H264Sps>();
  #pps = new SetTable<H264Pps>();
  #prevMsb = 0;
  #prevLsb = 0;
  #prevFrameNum = 0;
  #prevFrameNumOffset = 0;

  isParameterSet(nal: Uint8Array): boolean {
    const type = nal[0] & 0x1f;
    return type === H264NalType.SPS || type === H264NalType.PPS;
  }

  addParameterSet(nal: Uint8Array): boolean {
    try {
      if ((nal[0] & 0x1f) === H264NalType.SPS) {
        const sps = parseH264Sps(nal);
        return this.#sps.put(sps.spsId, nal, sps);
      }
      const r = reader(nal, 1);
      const id = r.readUE();
      const spsId = r.readUE();
      r.skipBits(1); // entropy_coding_mode_flag
      const pps = { spsId, bottomFieldPicOrderInFramePresent: r.readFlag() };
      return id < 256 && this.#pps.put(id, nal, pps);
    } catch {
      return false;
    }
  }

  seed(record: Uint8Array): void {
    const config = parseAvcConfig(record);
    for (const nal of [...config.sps, ...config.pps]) this.addParameterSet(nal);
  }

  record(): Uint8Array | undefined {
    if (this.#sps.raw.size === 0 || this.#pps.raw.size === 0) return undefined;
    return buildAvcConfig({ sps: this.#sps.list(), pps: this.#pps.list() });
  }

  get sps(): H264Sps | undefined {
    return this.#sps.parsed.values().next().value;
  }

  get reorderHint(): number | undefined {
    const sps = this.sps;
    return sps?.pocType === 2 ? 0 : sps?.maxNumReorderFrames;
  }

  isKeyframe(nal: Uint8Array): boolean {
    return (nal[0] & 0x1f) === H264NalType.IDR;
  }

  poc(nal: Uint8Array): number | undefined {
    const type = nal[0] & 0x1f;
    if (type !== H264NalType.SLICE && type !== H264NalType.IDR) return undefined;
    try {
      const r = reader(nal, 1);
      if (r.readUE() !== 0) return undefined; // first_mb_in_slice: not the picture's first slice
      r.readUE(); // slice_type
      const pps = this.#pps.parsed.get(r.readUE());
      const sps = pps && this.#sps.parsed.get(pps.spsId);
      if (!pps || !sps) return undefined;
      return this.#derive(r, nal, sps, pps);
    } catch {
      return undefined;
    }
  }

  #derive(r: BitReader, nal: Uint8Array, sps: H264Sps, pps: H264Pps): number {
    const idr = (nal[0] & 0x1f) === H264NalType.IDR;
    const reference = (nal[0] & 0x60) !== 0;
    if (sps.separateColourPlane) r.skipBits(2);
    const frameNum = r.readBits(sps.log2MaxFrameNum);
    let field = false;
    let bottom = false;
    if (!sps.frameMbsOnly) {
      field = r.readFlag();
      if (field) bottom = r.readFlag();
    }
    if (idr) r.readUE(); // idr_pic_id
    const maxFrameNum = 2 ** sps.log2MaxFrameNum;
    const frameNumOffset = idr
      ? 0
      : this.#prevFrameNum > frameNum
      ? this.#prevFrameNumOffset + maxFrameNum
      : this.#prevFrameNumOffset;
    this.#prevFrameNum = frameNum;
    this.#prevFrameNumOffset = frameNumOffset;
    if (sps.pocType === 0) {
      const lsb = r.readBits(sps.log2MaxPocLsb);
      const deltaBottom = pps.bottomFieldPicOrderInFramePresent && !field ? r.readSE() : 0;
      if (idr) this.#prevMsb = this.#prevLsb = 0;
      const maxLsb = 2 ** sps.log2MaxPocLsb;
      let msb = this.#prevMsb;
      if (lsb < this.#prevLsb && this.#prevLsb - lsb >= maxLsb / 2) msb += maxLsb;
      else if (lsb > this.#prevLsb && lsb - this.#prevLsb > maxLsb / 2) msb -= maxLsb;
      if (reference) {
        this.#prevMsb = msb;
        this.#prevLsb = lsb;
      }
      const top = msb + lsb;
      return field ? top : Math.min(top, top + deltaBottom);
    }
    if (sps.pocType === 2) {
      if (idr) return 0;
      return 2 * (frameNumOffset + frameNum) - (reference ? 0 : 1);
    }
    const cycle = sps.offsetForRefFrame;
    let absFrameNum = cycle.length > 0 ? frameNumOffset + frameNum : 0;
    if (!reference && absFrameNum > 0) absFrameNum--;
    let expected = 0;
    if (absFrameNum > 0) {
      const perCycle = cycle.reduce((a, b) => a + b, 0);
      const cycles = Math.floor((absFrameNum - 1) / cycle.length);
      const inCycle = (absFrameNum - 1) % cycle.length;
      expected = cycles * perCycle;
      for (let i = 0; i <= inCycle; i++) expected += cycle[i];
    }
    if (!reference) expected += sps.offsetForNonRefPic;
    let delta0 = 0;
    let delta1 = 0;
    if (!sps.deltaPicOrderAlwaysZero) {
      delta0 = r.readSE();
      if (pps.bottomFieldPicOrderInFramePresent && !field) delta1 = r.readSE();
    }
    const top = expected + delta0;
    if (field) return bottom ? top + sps.offsetForTopToBottomField : top;
    return Math.min(top, top + sps.offsetForTopToBottomField + delta1);
  }
}

interface H265Pps {
  spsId: number;
  outputFlagPresent: boolean;
  extraSliceHeaderBits: number;
}

interface H265SpsInfo {
  sps: H265Sps;
  separateColourPlane: boolean;
  maxNumReorderPics: number;
}

/** H.265 parameter sets and POC derivation. */
export class H265PictureState implements PictureState {
  #vps = new SetTable<number>();
  #sps = new SetTable<H265SpsInfo>();
  #pps = new SetTable<H265Pps>();
  #prevTid0Lsb = 0;
  #prevTid0Msb = 0;
  #first = true;

  isParameterSet(nal: Uint8Array): boolean {
    const type = (nal[0] >> 1) & 0x3f;
    return type >= H265NalType.VPS && type <= H265NalType.PPS;
  }

  addParameterSet(nal: Uint8Array): boolean {
    if (nal.length < 3) return false;
    try {
      const type = (nal[0] >> 1) & 0x3f;
      if (type === H265NalType.VPS) return this.#vps.put(nal[2] >> 4, nal, 0);
      if (type === H265NalType.SPS) {
        const sps = parseH265Sps(nal);
        return this.#sps.put(sps.spsId, nal, { sps, ...readSpsOrdering(nal) });
      }
      const r = new BitReader(unescapeRbsp(nal.subarray(2)));
      const id = r.readUE();
      const spsId = r.readUE();
      r.skipBits(1); // dependent_slice_segments_enabled_flag
      const outputFlagPresent = r.readFlag();
      const extraSliceHeaderBits = r.readBits(3);
      return id < 64 && this.#pps.put(id, nal, { spsId, outputFlagPresent, extraSliceHeaderBits });
    } catch {
      return false;
    }
  }

  seed(record: Uint8Array): void {
    const config = parseHevcConfig(record);
    for (const nal of [...config.vps, ...config.sps, ...config.pps]) this.addParameterSet(nal);
  }

  record(): Uint8Array | undefined {
    if (this.#vps.raw.size === 0 || this.#sps.raw.size === 0 || this.#pps.raw.size === 0) {
      return undefined;
    }
    return buildHevcConfig({ vps: this.#vps.list(), sps: this.#sps.list(), pps: this.#pps.list() });
  }

  get sps(): H265Sps | undefined {
    return this.#sps.parsed.values().next().value?.sps;
  }

  get reorderHint(): number | undefined {
    return this.#sps.parsed.values().next().value?.maxNumReorderPics;
  }

  isKeyframe(nal: Uint8Array): boolean {
    const type = (nal[0] >> 1) & 0x3f;
    return type >= H265NalType.IRAP_FIRST && type <= H265NalType.IRAP_LAST;
  }

  poc(nal: Uint8Array): number | undefined {
    const type = (nal[0] >> 1) & 0x3f;
    if (type > 31 || nal.length < 3) return undefined;
    try {
      const r = reader(nal, 2);
      if (!r.readFlag()) return undefined; // not first_slice_segment_in_pic_flag
      const irap = type >= H265NalType.IRAP_FIRST && type <= H265NalType.IRAP_LAST;
      if (irap) r.skipBits(1); // no_output_of_prior_pics_flag
      const pps = this.#pps.parsed.get(r.readUE());
      const info = pps && this.#sps.parsed.get(pps.spsId);
      if (!pps || !info) return undefined;
      r.skipBits(pps.extraSliceHeaderBits);
      r.readUE(); // slice_type
      if (pps.outputFlagPresent) r.skipBits(1);
      if (info.separateColourPlane) r.skipBits(2);
      const idr = type === H265NalType.IDR_W_RADL || type === H265NalType.IDR_N_LP;
      const lsb = idr ? 0 : r.readBits(info.sps.log2MaxPocLsb);
      const maxLsb = 2 ** info.sps.log2MaxPocLsb;
      let msb = 0;
      // IRAP pictures with NoRaslOutputFlag (IDR, BLA, a first CRA) restart the count.
      if (!(irap && (idr || type < H265NalType.IDR_W_RADL || this.#first))) {
        msb = this.#prevTid0Msb;
        if (lsb < this.#prevTid0Lsb && this.#prevTid0Lsb - lsb >= maxLsb / 2) msb += maxLsb;
        else if (lsb > this.#prevTid0Lsb && lsb - this.#prevTid0Lsb > maxLsb / 2) msb -= maxLsb;
      }
      this.#first = false;
      const tid = (nal[1] & 7) - 1;
      // sub-layer non-reference pictures (even types below 16), RADL and RASL are skipped
      const skipped = (type < 16 && type % 2 === 0) || (type >= 6 && type <= 9);
      if (tid === 0 && !skipped) {
        this.#prevTid0Lsb = lsb;
        this.#prevTid0Msb = msb;
      }
      return msb + lsb;
    } catch {
      return undefined;
    }
  }
}

/**
 * The SPS fields {@linkcode parseH265Sps} does not report: separate_colour_plane_flag and
 * the highest sub-layer's sps_max_num_reorder_pics (7.3.2.2).
 */
function readSpsOrdering(nal: Uint8Array): {
  separateColourPlane: boolean;
  maxNumReorderPics: number;
} {
  const r = new BitReader(unescapeRbsp(nal.subarray(2)));
  r.skipBits(4); // sps_video_parameter_set_id
  const subLayers = r.readBits(3); // sps_max_sub_layers_minus1
  r.skipBits(1 + 96); // temporal id nesting, general profile/tier/level
  let subLayerBits = subLayers > 0 ? 2 * (8 - subLayers) : 0;
  for (let i = 0; i < subLayers; i++) {
    subLayerBits += r.readFlag() ? 88 : 0; // sub_layer_profile_present_flag
    subLayerBits += r.readFlag() ? 8 : 0; // sub_layer_level_present_flag
  }
  r.skipBits(subLayerBits);
  r.readUE(); // sps_seq_parameter_set_id
  const separateColourPlane = r.readUE() === 3 && r.readFlag();
  for (let i = 0; i < 2; i++) r.readUE(); // picture width and height
  if (r.readFlag()) { for (let i = 0; i < 4; i++) r.readUE(); // conformance window
   }
  for (let i = 0; i < 3; i++) r.readUE(); // bit depths, log2_max_pic_order_cnt_lsb_minus4
  const allSubLayers = r.readFlag();
  let maxNumReorderPics = 0;
  for (let i = allSubLayers ? 0 : subLayers; i <= subLayers; i++) {
    r.readUE(); // sps_max_dec_pic_buffering_minus1
    maxNumReorderPics = r.readUE();
    r.readUE(); // sps_max_latency_increase_plus1
  }
  return { separateColourPlane, maxNumReorderPics };
}
