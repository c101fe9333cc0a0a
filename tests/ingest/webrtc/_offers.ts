/** Browser-shaped SDP offers for the WHIP/WHEP tests. */

/** One codec in an offer's media section. */
export interface OfferCodec {
  pt: number;
  rtpmap: string;
  fmtp?: string;
}

/** H.264 in packetization mode 1, as browsers offer it. */
export const H264: OfferCodec = {
  pt: 102,
  rtpmap: "H264/90000",
  fmtp: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
};
/** H.264 in packetization mode 0 only. */
export const H264_MODE0: OfferCodec = {
  pt: 103,
  rtpmap: "H264/90000",
  fmtp: "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f",
};
/** VP8. */
export const VP8: OfferCodec = { pt: 96, rtpmap: "VP8/90000" };
/** Opus. */
export const OPUS: OfferCodec = {
  pt: 111,
  rtpmap: "opus/48000/2",
  fmtp: "minptime=10;useinbandfec=1",
};
/** G.711 µ-law. */
export const PCMU: OfferCodec = { pt: 0, rtpmap: "PCMU/8000" };

const FINGERPRINT = Array.from({ length: 32 }, (_, i) => (i * 7 + 16).toString(16).toUpperCase())
  .join(":");

/**
 * An offer with one audio and/or one video section, bundled, with ICE credentials and a
 * DTLS fingerprint; `direction` is the offerer's (`sendonly` for WHIP, `recvonly` for WHEP).
 */
export function makeOffer(
  { video = [H264], audio = [OPUS], direction = "sendonly" }: {
    video?: OfferCodec[] | null;
    audio?: OfferCodec[] | null;
    direction?: "sendonly" | "recvonly";
  } = {},
): string {
  const sections: [string, OfferCodec[]][] = [];
  if (audio) sections.push(["audio", audio]);
  if (video) sections.push(["video", video]);
  const lines = [
    "v=0",
    "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
    "s=-",
    "t=0 0",
    `a=group:BUNDLE ${sections.map((_, i) => i).join(" ")}`,
    "a=msid-semantic: WMS",
  ];
  sections.forEach(([kind, codecs], mid) => {
    lines.push(
      `m=${kind} 9 UDP/TLS/RTP/SAVPF ${codecs.map((c) => c.pt).join(" ")}`,
      "c=IN IP4 0.0.0.0",
      "a=rtcp:9 IN IP4 0.0.0.0",
      "a=ice-ufrag:abcd",
      "a=ice-pwd:0123456789abcdefghijklmn",
      "a=ice-options:trickle",
      `a=fingerprint:sha-256 ${FINGERPRINT}`,
      "a=setup:actpass",
      `a=mid:${mid}`,
      `a=${direction}`,
      "a=rtcp-mux",
    );
    for (const codec of codecs) {
      lines.push(`a=rtpmap:${codec.pt} ${codec.rtpmap}`);
      if (codec.fmtp) lines.push(`a=fmtp:${codec.pt} ${codec.fmtp}`);
    }
  });
  return lines.join("\r\n") + "\r\n";
}
