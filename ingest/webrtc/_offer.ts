/** Checks a WHIP/WHEP SDP offer before werift sees it, so bad offers get a clear 4xx. */

import { parseSdp, SdpError, type SdpMedia } from "../../media/rtp/sdp.ts";
import { WebRtcError } from "./error.ts";

/** What an acceptable offer carries, per media kind. */
export interface OfferSummary {
  /** The offer has a video section with H.264 in packetization mode 1. */
  readonly h264: boolean;
  /** The offer has an audio section with Opus at 48 kHz. */
  readonly opus: boolean;
  /** The offer has a video section (whatever its codecs). */
  readonly video: boolean;
  /** The offer has an audio section (whatever its codecs). */
  readonly audio: boolean;
}

/** One payload type of a media section: its rtpmap and fmtp parameters. */
interface Format {
  encoding: string;
  clockRate: number;
  fmtp: Map<string, string>;
}

/**
 * Read `text` as a WebRTC offer. Throws {@linkcode WebRtcError} with status 400 when it is
 * not SDP or misses what ICE and DTLS need, 406 when no section has a codec we take.
 */
export function inspectOffer(text: string): OfferSummary {
  let sdp;
  try {
    sdp = parseSdp(text);
  } catch (error) {
    if (error instanceof SdpError) throw new WebRtcError(400, `malformed SDP: ${error.message}`);
    throw error;
  }
  const session = new Set(sdp.attributes.map((a) => a.name.toLowerCase()));
  let video = 0, audio = 0, h264 = false, opus = false;
  for (const media of sdp.media) {
    if (media.type !== "video" && media.type !== "audio") continue;
    if (media.port === 0) continue;
    if (!/^UDP\/TLS\/RTP\/SAVPF?$/i.test(media.protocol)) {
      throw new WebRtcError(400, `m=${media.type} uses ${media.protocol}, not UDP/TLS/RTP/SAVPF`);
    }
    const names = new Set(media.attributes.map((a) => a.name.toLowerCase()));
    for (const needed of ["ice-ufrag", "ice-pwd", "fingerprint"]) {
      if (!names.has(needed) && !session.has(needed)) {
        throw new WebRtcError(400, `m=${media.type} has no a=${needed}`);
      }
    }
    const formats = readFormats(media);
    if (media.type === "video") {
      video++;
      h264 ||= formats.some((f) =>
        f.encoding === "h264" && f.clockRate === 90000 && f.fmtp.get("packetization-mode") === "1"
      );
    } else {
      audio++;
      opus ||= formats.some((f) => f.encoding === "opus" && f.clockRate === 48000);
    }
  }
  if (video + audio === 0) throw new WebRtcError(400, "the offer has no audio or video section");
  if (video > 1 || audio > 1) {
    throw new WebRtcError(400, "the offer has more than one video or audio section");
  }
  if (!h264 && !opus) {
    throw new WebRtcError(
      406,
      "the offer has no codec this server takes: H.264 (packetization-mode=1) video or Opus audio",
    );
  }
  return { h264, opus, video: video > 0, audio: audio > 0 };
}

/** Every payload type of `media` that has an rtpmap, with its fmtp parameters. */
function readFormats(media: SdpMedia): Format[] {
  const byType = new Map<string, Format>();
  for (const a of media.attributes) {
    const name = a.name.toLowerCase();
    if (a.value === undefined || (name !== "rtpmap" && name !== "fmtp")) continue;
    const space = a.value.indexOf(" ");
    if (space < 0) throw new WebRtcError(400, `malformed SDP: a=${name}:${a.value.slice(0, 60)}`);
    const pt = a.value.slice(0, space);
    const rest = a.value.slice(space + 1).trim();
    if (name === "rtpmap") {
      const [encoding, rate] = rest.split("/");
      const clockRate = Number(rate);
      if (!encoding || !Number.isInteger(clockRate) || clockRate <= 0) {
        throw new WebRtcError(400, `malformed SDP: a=rtpmap:${a.value.slice(0, 60)}`);
      }
      const format = byType.get(pt) ?? { encoding: "", clockRate: 0, fmtp: new Map() };
      format.encoding = encoding.toLowerCase();
      format.clockRate = clockRate;
      byType.set(pt, format);
    } else {
      const format = byType.get(pt) ?? { encoding: "", clockRate: 0, fmtp: new Map() };
      for (const part of rest.split(";")) {
        const eq = part.indexOf("=");
        if (eq > 0) {
          format.fmtp.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
        }
      }
      byType.set(pt, format);
    }
  }
  return [...byType.values()].filter((f) => f.encoding !== "");
}
