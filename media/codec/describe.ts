/**
 * What a decoder configuration says about its track, for every codec at once: the one
 * place that turns a `CONFIG` frame into a codec string, a picture size or a sample rate.
 *
 * @module
 */

import type { MediaFrame } from "../../bus/frame.ts";
import { avcCodecString, parseAvcConfig, parseH264Sps } from "./h264.ts";
import { hevcCodecString, parseH265Sps, parseHevcConfig } from "./h265.ts";
import { aacCodecString, parseAudioSpecificConfig } from "./aac.ts";
import { parseOpusHead } from "./opus.ts";

/** The facts a `CONFIG` frame carries about its track. */
export interface ConfigDescription {
  /** The RFC 6381 codec string, e.g. `"avc1.64001f"`, `"mp4a.40.2"`, `"opus"`. */
  codec: string;
  /** Picture width in pixels (video). */
  width?: number;
  /** Picture height in pixels (video). */
  height?: number;
  /** Frames per second, when the SPS signals it (video). */
  frameRate?: number;
  /** Samples per second (audio; Opus is always 48,000). */
  sampleRate?: number;
  /** Output channels (audio). */
  channels?: number;
  /** Samples per access unit (AAC: 1024, or 960 with the frame length flag). */
  samplesPerFrame?: number;
}

const OPUS_RATE = 48_000;

/**
 * Describe the track of a `CONFIG` frame (AVC/HEVC configuration record, AudioSpecificConfig
 * or OpusHead).
 *
 * @throws {RangeError} when the configuration does not parse, or has no SPS.
 * @throws {TypeError} for a codec without a configuration format here.
 * @example
 * ```ts
 * import { describeConfig } from "./describe.ts";
 * import { FrameFlags } from "../../bus/frame.ts";
 *
 * const aac = describeConfig({
 *   track: 1, kind: "audio", codec: "aac", pts: 0, dts: 0,
 *   flags: FrameFlags.CONFIG, data: new Uint8Array([0x11, 0x90]),
 * });
 * // { codec: "mp4a.40.2", sampleRate: 48000, channels: 2, samplesPerFrame: 1024 }
 * ```
 */
export function describeConfig(frame: MediaFrame): ConfigDescription {
  switch (frame.codec) {
    case "h264": {
      const config = parseAvcConfig(frame.data);
      const sps = parseH264Sps(firstSps(config.sps));
      return { codec: avcCodecString(config), ...picture(sps) };
    }
    case "h265": {
      const config = parseHevcConfig(frame.data);
      const sps = parseH265Sps(firstSps(config.sps));
      return { codec: hevcCodecString(config), ...picture(sps) };
    }
    case "aac": {
      const config = parseAudioSpecificConfig(frame.data);
      return {
        codec: aacCodecString(config),
        sampleRate: config.sampleRate,
        channels: aacChannels(config.channelConfiguration),
        samplesPerFrame: config.samplesPerFrame,
      };
    }
    case "opus": {
      const head = parseOpusHead(frame.data);
      return { codec: "opus", sampleRate: OPUS_RATE, channels: head.channels };
    }
    default:
      throw new TypeError(`no configuration format is known for ${frame.codec}`);
  }
}

function firstSps(sps: readonly Uint8Array[]): Uint8Array {
  if (sps.length === 0) throw new RangeError("decoder configuration record has no SPS");
  return sps[0];
}

function picture(
  sps: { width: number; height: number; frameRate?: number },
): Omit<ConfigDescription, "codec"> {
  const { width, height, frameRate } = sps;
  return frameRate ? { width, height, frameRate } : { width, height };
}

/** Channels of an AAC channel configuration (7 is 7.1; 0, "in the stream", is taken as 2). */
function aacChannels(configuration: number): number {
  if (configuration === 7) return 8;
  return configuration >= 1 && configuration <= 6 ? configuration : 2;
}
