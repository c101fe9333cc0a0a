/**
 * The codecs the RTSP server carries, as SDP media sections: what an announced section
 * means (codec, clock, decoder configuration) and how to describe a stream's configs.
 *
 * @module
 */

import { type CodecId, escapeForLog, type MediaFrame, type TrackKind } from "../../mod.ts";
import { parseAudioSpecificConfig } from "../../media/codec/aac.ts";
import { parseOpusHead } from "../../media/codec/opus.ts";
import { fmtpParameters, rtpMap, type SdpMedia } from "../../media/rtp/sdp.ts";
import { avcConfigFromFmtp, avcFmtp } from "../../media/rtp/h264.ts";
import { hevcConfigFromFmtp, hevcFmtp } from "../../media/rtp/h265.ts";
import { aacFmtp, type Mpeg4GenericParams, mpeg4GenericParams } from "../../media/rtp/aac.ts";
import { opusFmtp, opusHeadFromFmtp } from "../../media/rtp/opus.ts";
import { type LatmParams, latmParams } from "../../media/rtp/latm.ts";

/** One announced track the server can receive. */
export interface TrackFormat {
  readonly kind: TrackKind;
  readonly codec: CodecId;
  readonly payloadType: number;
  readonly clockRate: number;
  /** The decoder configuration the SDP carries (video: only when its fmtp has one). */
  readonly config?: Uint8Array;
  /** `mpeg4-generic` AU header layout. */
  readonly aac?: Mpeg4GenericParams;
  /** `MP4A-LATM` framing: AAC whose config may also come in band. */
  readonly latm?: LatmParams;
  /** Samples per AAC frame. */
  readonly samplesPerFrame?: number;
  /** H.265 DONL fields present. */
  readonly donl?: boolean;
}

/**
 * What an SDP media section carries, or a reason why the server cannot carry it.
 *
 * @throws {SdpError} when its rtpmap is malformed.
 */
export function trackFormat(media: SdpMedia): TrackFormat | string {
  const map = rtpMap(media);
  if (!map) {
    const pt = escapeForLog(media.formats[0] ?? "?");
    return Number(pt) < 96
      ? `static payload type ${pt} is not supported`
      : `${escapeForLog(media.type)} format ${pt} has no rtpmap`;
  }
  const fmtp = fmtpParameters(media);
  const base = { payloadType: map.payloadType, clockRate: map.clockRate };
  switch (map.encoding.toLowerCase()) {
    case "h264":
      if ((fmtp["packetization-mode"] ?? "0") === "2") {
        return "H.264 interleaved packetization mode 2 is not supported";
      }
      return { ...base, kind: "video", codec: "h264", config: avcConfigFromFmtp(fmtp) };
    case "h265": {
      const donl = Number(fmtp["sprop-max-don-diff"] ?? "0") > 0;
      return { ...base, kind: "video", codec: "h265", config: hevcConfigFromFmtp(fmtp), donl };
    }
    case "mpeg4-generic": {
      const aac = mpeg4GenericParams(fmtp);
      if (!aac) return "mpeg4-generic without a supported AAC-hbr fmtp";
      try {
        const { samplesPerFrame } = parseAudioSpecificConfig(aac.config);
        return { ...base, kind: "audio", codec: "aac", config: aac.config, aac, samplesPerFrame };
      } catch (error) {
        return `mpeg4-generic with a bad config: ${(error as Error).message}`;
      }
    }
    case "mp4a-latm": {
      const latm = latmParams(fmtp);
      if (typeof latm === "string") return latm;
      const config = latm.config?.audioSpecificConfig;
      return { ...base, kind: "audio", codec: "aac", config, latm };
    }
    case "opus":
      if (map.clockRate !== 48000) return `Opus at ${map.clockRate} Hz`;
      return { ...base, kind: "audio", codec: "opus", config: opusHeadFromFmtp(fmtp) };
    default:
      return `codec ${escapeForLog(map.encoding)} is not supported`;
  }
}

/** Payload types the server uses when it describes a stream. */
const PAYLOAD_TYPES: Readonly<Record<string, number>> = { h264: 96, h265: 97, aac: 98, opus: 99 };

/** Whether the server can describe a stream whose config frame this is. */
export function canDescribe(config: MediaFrame): boolean {
  return config.codec in PAYLOAD_TYPES;
}

/** What an egress track sends: the config it was described with. */
export interface DescribedTrack {
  readonly kind: TrackKind;
  readonly codec: CodecId;
  readonly payloadType: number;
  readonly clockRate: number;
  readonly control: string;
  readonly media: SdpMedia;
}

/**
 * The SDP media section for a CONFIG frame, with `a=control:<control>`.
 *
 * @throws {RangeError} when the config is malformed.
 */
export function describeTrack(config: MediaFrame, control: string): DescribedTrack {
  const pt = PAYLOAD_TYPES[config.codec];
  const attributes: { name: string; value: string }[] = [];
  let clockRate = 90000;
  const add = (rtpmap: string, fmtp: string) => {
    attributes.push({ name: "rtpmap", value: `${pt} ${rtpmap}` });
    attributes.push({ name: "fmtp", value: `${pt} ${fmtp}` });
  };
  switch (config.codec) {
    case "h264":
      add("H264/90000", avcFmtp(config.data));
      break;
    case "h265":
      add("H265/90000", hevcFmtp(config.data));
      break;
    case "aac": {
      const asc = parseAudioSpecificConfig(config.data);
      clockRate = asc.sampleRate;
      add(`MPEG4-GENERIC/${clockRate}/${asc.channelConfiguration || 2}`, aacFmtp(config.data));
      break;
    }
    case "opus":
      parseOpusHead(config.data);
      clockRate = 48000;
      add("opus/48000/2", opusFmtp(config.data));
      break;
    default:
      throw new RangeError(`codec ${config.codec} cannot be sent over RTP here`);
  }
  attributes.push({ name: "control", value: control });
  return {
    kind: config.kind,
    codec: config.codec,
    payloadType: pt,
    clockRate,
    control,
    media: { type: config.kind, port: 0, protocol: "RTP/AVP", formats: [String(pt)], attributes },
  };
}
