/**
 * What the fMP4 writer needs to know about a track, derived from its CONFIG frame.
 *
 * @module
 */

import {
  CLOCK_RATE,
  FrameFlags,
  hasFlag,
  type MediaFrame,
  type TrackKind,
} from "../../bus/frame.ts";
import { avcCodecString, parseAvcConfig, parseH264Sps } from "../codec/h264.ts";
import { hevcCodecString, parseH265Sps, parseHevcConfig } from "../codec/h265.ts";
import { aacCodecString, parseAudioSpecificConfig } from "../codec/aac.ts";
import { parseOpusHead } from "../codec/opus.ts";

/** Codecs the fMP4 writer can put in a sample entry. */
export type Fmp4Codec = "h264" | "h265" | "aac" | "opus";

/**
 * One track of an fMP4 file. The MP4 `track_ID` is `track + 1`.
 *
 * @example Describe a track by hand (normally {@linkcode trackFromConfig} does it)
 * ```ts
 * import type { Fmp4Track } from "@arcly/stream/fmp4";
 *
 * const audio: Fmp4Track = {
 *   track: 1,
 *   kind: "audio",
 *   codec: "aac",
 *   config: new Uint8Array([0x11, 0x90]), // AAC-LC, 48 kHz, stereo
 *   codecString: "mp4a.40.2",
 *   timescale: 48000,
 *   width: 0,
 *   height: 0,
 *   sampleRate: 48000,
 *   channels: 2,
 *   samplesPerFrame: 1024,
 * };
 * ```
 */
export interface Fmp4Track {
  /** The {@linkcode MediaFrame.track} number whose frames go in this track. */
  readonly track: number;
  /** Video or audio. */
  readonly kind: TrackKind;
  /** The codec. */
  readonly codec: Fmp4Codec;
  /** The CONFIG payload: avcC / hvcC record, AudioSpecificConfig or OpusHead. */
  readonly config: Uint8Array;
  /** The RFC 6381 codec string, e.g. `avc1.64001f` or `mp4a.40.2`. */
  readonly codecString: string;
  /** Ticks per second of the track's media timeline: 90000 for video, the sample rate for audio. */
  readonly timescale: number;
  /** Picture width in pixels (0 for audio). */
  readonly width: number;
  /** Picture height in pixels (0 for audio). */
  readonly height: number;
  /** Audio sample rate in Hz (0 for video). */
  readonly sampleRate: number;
  /** Audio channel count (0 for video). */
  readonly channels: number;
  /** Samples per audio frame when fixed (AAC); 0 when each packet says (Opus) or for video. */
  readonly samplesPerFrame: number;
}

const OPUS_RATE = 48000;

/**
 * Describes the track of a CONFIG frame, reading the configuration with `media/codec`.
 *
 * @throws {TypeError} when `frame` is not a CONFIG frame or its codec has no fMP4 mapping here.
 * @throws {RangeError} when the configuration does not parse.
 * @example
 * ```ts
 * import { trackFromConfig } from "@arcly/stream/fmp4";
 * import { FrameFlags } from "@arcly/stream";
 *
 * const track = trackFromConfig({
 *   track: 1,
 *   kind: "audio",
 *   codec: "aac",
 *   pts: 0,
 *   dts: 0,
 *   flags: FrameFlags.CONFIG,
 *   data: new Uint8Array([0x11, 0x90]),
 * });
 * track.timescale; // 48000
 * ```
 */
export function trackFromConfig(frame: MediaFrame): Fmp4Track {
  if (!hasFlag(frame, FrameFlags.CONFIG)) {
    throw new TypeError(`track ${frame.track}: expected a CONFIG frame`);
  }
  const base = { track: frame.track, kind: frame.kind, config: frame.data };
  switch (frame.codec) {
    case "h264": {
      const config = parseAvcConfig(frame.data);
      return videoTrack(frame, "h264", avcCodecString(config), parseH264Sps(firstSps(config)));
    }
    case "h265": {
      const config = parseHevcConfig(frame.data);
      return videoTrack(frame, "h265", hevcCodecString(config), parseH265Sps(firstSps(config)));
    }
    case "aac": {
      const config = parseAudioSpecificConfig(frame.data);
      return {
        ...base,
        codec: "aac",
        codecString: aacCodecString(config),
        timescale: config.sampleRate,
        width: 0,
        height: 0,
        sampleRate: config.sampleRate,
        channels: aacChannels(config.channelConfiguration),
        samplesPerFrame: config.samplesPerFrame,
      };
    }
    case "opus": {
      const head = parseOpusHead(frame.data);
      return {
        ...base,
        codec: "opus",
        codecString: "opus",
        timescale: OPUS_RATE,
        width: 0,
        height: 0,
        sampleRate: OPUS_RATE,
        channels: head.channels,
        samplesPerFrame: 0,
      };
    }
    default:
      throw new TypeError(`track ${frame.track}: codec ${frame.codec} is not supported in fMP4`);
  }
}

function firstSps(config: { sps: Uint8Array[] }): Uint8Array {
  if (config.sps.length === 0) throw new RangeError("decoder configuration record has no SPS");
  return config.sps[0];
}

function videoTrack(
  frame: MediaFrame,
  codec: Fmp4Codec,
  codecString: string,
  sps: { width: number; height: number },
): Fmp4Track {
  return {
    track: frame.track,
    kind: "video",
    codec,
    config: frame.data,
    codecString,
    timescale: CLOCK_RATE,
    width: sps.width,
    height: sps.height,
    sampleRate: 0,
    channels: 0,
    samplesPerFrame: 0,
  };
}

/** Channel count of an AAC channelConfiguration (ISO/IEC 14496-3 table 1.19). */
function aacChannels(channelConfiguration: number): number {
  if (channelConfiguration === 7) return 8;
  if (channelConfiguration >= 1 && channelConfiguration <= 6) return channelConfiguration;
  return 2;
}
