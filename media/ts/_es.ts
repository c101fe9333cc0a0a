/**
 * Elementary stream parsers of the demuxer: one PES payload in, MediaFrame
 * payloads out (Annex-B video to length-prefixed NAL units with synthesised
 * CONFIG frames, ADTS to raw AAC, Opus control headers stripped).
 */

import { FrameFlags } from "../../bus/frame.ts";
import { type AacConfig, buildAudioSpecificConfig, parseAdtsHeader } from "../codec/aac.ts";
import { buildAvcConfig, H264NalType, isH264Keyframe } from "../codec/h264.ts";
import { buildHevcConfig, H265NalType, isH265Keyframe } from "../codec/h265.ts";
import { lengthPrefixedFromNalUnits, splitAnnexB } from "../codec/nal.ts";
import { buildOpusHead, opusPacketSamples } from "../codec/opus.ts";

/** Receives one frame payload; `flags` are FrameFlags without DISCONTINUITY. */
export type EmitFrame = (data: Uint8Array, pts: number, dts: number, flags: number) => void;

/** One PES payload with its unwrapped timestamps. */
export interface PesPayload {
  /** The payload, a view valid only during {@linkcode EsParser.push}. */
  data: Uint8Array;
  pts: number;
  dts: number;
  /** False when the PES had no PTS (`pts`/`dts` then repeat the last ones). */
  hasTimestamp: boolean;
  /** random_access_indicator was set on its first packet. */
  randomAccess: boolean;
}

/** Turns PES payloads of one elementary stream into frame payloads. */
export interface EsParser {
  /** Parses one PES payload; returns the number of bytes that were garbage (skipped). */
  push(pes: PesPayload, emit: EmitFrame): number;
  /** Forgets partial data after a continuity error. */
  reset(): void;
}

/** H.264 / H.265 access units: Annex-B in, length-prefixed out, AUDs dropped. */
export class VideoEs implements EsParser {
  readonly #h264: boolean;
  #vps: Uint8Array[] = [];
  #sps: Uint8Array[] = [];
  #pps: Uint8Array[] = [];
  #configured = false;

  constructor(codec: "h264" | "h265") {
    this.#h264 = codec === "h264";
  }

  reset(): void {}

  push({ data: payload, pts, dts, randomAccess }: PesPayload, emit: EmitFrame): number {
    const h264 = this.#h264;
    const nals = splitAnnexB(payload);
    const kept: Uint8Array[] = [];
    const vps: Uint8Array[] = [];
    const sps: Uint8Array[] = [];
    const pps: Uint8Array[] = [];
    for (const nal of nals) {
      const type = h264 ? nal[0] & 0x1f : (nal[0] >> 1) & 0x3f;
      if (type === (h264 ? H264NalType.AUD : H265NalType.AUD)) continue;
      if (type === (h264 ? H264NalType.SPS : H265NalType.SPS)) sps.push(nal);
      else if (type === (h264 ? H264NalType.PPS : H265NalType.PPS)) pps.push(nal);
      else if (!h264 && type === H265NalType.VPS) vps.push(nal);
      kept.push(nal);
    }
    if (kept.length === 0) return payload.length;
    if (sps.length + pps.length + vps.length > 0) this.#updateConfig(vps, sps, pps, pts, dts, emit);
    const data = lengthPrefixedFromNalUnits(kept);
    const key = randomAccess || (h264 ? isH264Keyframe(data) : isH265Keyframe(data));
    emit(data, pts, dts, key ? FrameFlags.KEYFRAME : FrameFlags.NONE);
    return 0;
  }

  /** Emits a CONFIG frame when in-band parameter sets differ from the last ones. */
  #updateConfig(
    vps: Uint8Array[],
    sps: Uint8Array[],
    pps: Uint8Array[],
    pts: number,
    dts: number,
    emit: EmitFrame,
  ): void {
    const nextVps = vps.length > 0 ? vps : this.#vps;
    const nextSps = sps.length > 0 ? sps : this.#sps;
    const nextPps = pps.length > 0 ? pps : this.#pps;
    if (
      this.#configured && sameNals(nextVps, this.#vps) && sameNals(nextSps, this.#sps) &&
      sameNals(nextPps, this.#pps)
    ) return;
    this.#vps = nextVps.map((n) => n.slice());
    this.#sps = nextSps.map((n) => n.slice());
    this.#pps = nextPps.map((n) => n.slice());
    if (this.#sps.length === 0 || this.#pps.length === 0) return;
    if (!this.#h264 && this.#vps.length === 0) return;
    let record: Uint8Array;
    try {
      record = this.#h264
        ? buildAvcConfig({ sps: this.#sps, pps: this.#pps })
        : buildHevcConfig({ vps: this.#vps, sps: this.#sps, pps: this.#pps });
    } catch (e) {
      if (e instanceof RangeError) return; // a damaged SPS: wait for the next one
      throw e;
    }
    this.#configured = true;
    emit(record, pts, dts, FrameFlags.CONFIG);
  }
}

function sameNals(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x.length !== y.length) return false;
    for (let k = 0; k < x.length; k++) if (x[k] !== y[k]) return false;
  }
  return true;
}

/** Bytes an unfinished ADTS frame may carry into the next PES (the ADTS maximum). */
const ADTS_MAX_FRAME = 8191;

/**
 * AAC in ADTS: each ADTS frame becomes one raw access unit. The PES PTS
 * applies to the first frame that starts in it; the following frames are
 * `n * samplesPerFrame` later, computed from the PTS each time so rounding
 * never accumulates. A frame split across PES packets is carried over.
 */
export class AdtsEs implements EsParser {
  #carry: Uint8Array | undefined;
  #base = Number.NaN;
  #count = 0;
  #config: AacConfig | undefined;

  reset(): void {
    this.#carry = undefined;
  }

  push({ data: payload, pts, hasTimestamp }: PesPayload, emit: EmitFrame): number {
    const carried = this.#carry?.length ?? 0;
    let data: Uint8Array;
    if (this.#carry) {
      data = new Uint8Array(carried + payload.length);
      data.set(this.#carry);
      data.set(payload, carried);
      this.#carry = undefined;
    } else {
      data = payload.slice(); // frames are views into this copy
    }
    let garbage = 0;
    let stamped = !hasTimestamp;
    let p = 0;
    while (p + 7 <= data.length) {
      if (data[p] !== 0xff || (data[p + 1] & 0xf6) !== 0xf0) {
        p++;
        garbage++;
        continue;
      }
      let header;
      try {
        header = parseAdtsHeader(data, p);
      } catch {
        p++;
        garbage++;
        continue;
      }
      if (p + header.frameLength > data.length) break;
      if (!stamped && p >= carried) {
        this.#base = pts;
        this.#count = 0;
        stamped = true;
      }
      const cfg = header.config;
      // The CONFIG goes out with the first frame that has a time (none before: those are dropped).
      if (!Number.isNaN(this.#base) && !sameAacConfig(cfg, this.#config)) {
        if (this.#config) {
          this.#base += Math.round(this.#count * this.#frameTicks());
          this.#count = 0;
        }
        this.#config = cfg;
        emit(buildAudioSpecificConfig(cfg), this.#base, this.#base, FrameFlags.CONFIG);
      }
      if (Number.isNaN(this.#base)) {
        garbage += header.frameLength; // no timestamp yet
      } else {
        const t = this.#base + Math.round(this.#count * this.#frameTicks());
        this.#count++;
        const au = data.subarray(p + header.headerLength, p + header.frameLength);
        emit(au, t, t, FrameFlags.KEYFRAME);
      }
      p += header.frameLength;
    }
    if (p < data.length) {
      if (data.length - p < ADTS_MAX_FRAME) this.#carry = data.slice(p);
      else garbage += data.length - p;
    }
    return garbage;
  }

  #frameTicks(): number {
    const cfg = this.#config!;
    return (cfg.samplesPerFrame * 90000) / cfg.sampleRate;
  }
}

function sameAacConfig(a: AacConfig, b: AacConfig | undefined): boolean {
  return b !== undefined && a.objectType === b.objectType &&
    a.samplingFrequencyIndex === b.samplingFrequencyIndex &&
    a.channelConfiguration === b.channelConfiguration;
}

/**
 * Opus in TS as ffmpeg and GStreamer write it: each packet has a control
 * header (11-bit prefix 0x3FF, trim and extension flags), its size as a run of
 * 255-bytes, optional trim fields. Timestamps follow the sample counts from
 * the PES PTS; the first start trim becomes the OpusHead pre-skip.
 */
export class OpusEs implements EsParser {
  readonly #channels: number;
  #base = Number.NaN;
  #samples = 0;
  #configured = false;

  /** `channels` from the PMT channel_config_code (1 or 2 get an OpusHead CONFIG). */
  constructor(channels: number) {
    this.#channels = channels;
  }

  reset(): void {}

  push({ data: payload, pts, hasTimestamp }: PesPayload, emit: EmitFrame): number {
    if (hasTimestamp) {
      this.#base = pts;
      this.#samples = 0;
    }
    if (Number.isNaN(this.#base)) return payload.length;
    const data = payload.slice();
    let p = 0;
    while (p + 2 <= data.length) {
      if (((data[p] << 3) | (data[p + 1] >> 5)) !== 0x3ff) return data.length - p;
      const flags = data[p + 1];
      p += 2;
      let size = 0;
      let byte = 255;
      while (byte === 255 && p < data.length) {
        byte = data[p++];
        size += byte;
      }
      let startTrim = 0;
      if (flags & 0x10) {
        startTrim = (data[p] << 8) | data[p + 1];
        p += 2;
      }
      if (flags & 0x08) p += 2;
      if (flags & 0x04) p += 1 + data[p];
      if (p + size > data.length || size === 0) return data.length - Math.min(p, data.length);
      const packet = data.subarray(p, p + size);
      p += size;
      let samples: number;
      try {
        samples = opusPacketSamples(packet);
      } catch {
        continue;
      }
      const t = this.#base + Math.round((this.#samples * 90000) / 48000);
      this.#samples += samples;
      if (!this.#configured && this.#channels >= 1 && this.#channels <= 2) {
        this.#configured = true;
        const head = buildOpusHead({
          channels: this.#channels,
          preSkip: startTrim,
          inputSampleRate: 48000,
        });
        emit(head, t, t, FrameFlags.CONFIG);
      }
      emit(packet, t, t, FrameFlags.KEYFRAME);
    }
    return data.length - p;
  }
}
