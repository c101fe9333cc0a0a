/** Helpers shared by the RTP tests: RTP packets, payload collection, an SDP to mutate. */

import { RtpPacket, type RtpPayloadSink, writeRtpHeader } from "../../../media/rtp/mod.ts";

export { hex, unhex } from "../../_util/bytes.ts";

/** The bytes of an RTP packet with this header and payload. */
export function rtpBytes(
  sequence: number,
  timestamp: number,
  marker: boolean,
  payload: Uint8Array,
  payloadType = 96,
): Uint8Array {
  const bytes = new Uint8Array(12 + payload.length);
  writeRtpHeader(bytes, 0, {
    payloadType,
    marker,
    sequence: sequence & 0xffff,
    timestamp: timestamp >>> 0,
    ssrc: 0x1234,
  });
  bytes.set(payload, 12);
  return bytes;
}

/** An RTP packet (parsed) with this header and payload. */
export function rtp(
  sequence: number,
  timestamp: number,
  marker: boolean,
  payload: Uint8Array,
  payloadType = 96,
): RtpPacket {
  return new RtpPacket().parse(rtpBytes(sequence, timestamp, marker, payload, payloadType));
}

/** A payload sink that keeps every packet. */
export class Collect implements RtpPayloadSink {
  readonly packets: { marker: boolean; payload: Uint8Array }[] = [];
  #current: number[] = [];
  begin(): void {
    this.#current = [];
  }
  write(bytes: Uint8Array): void {
    for (const b of bytes) this.#current.push(b);
  }
  writeByte(value: number): void {
    this.#current.push(value);
  }
  end(marker: boolean): void {
    this.packets.push({ marker, payload: Uint8Array.from(this.#current) });
  }
}

/** Length-prefixed access unit from NAL units. */
export function au(...nals: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const n of nals) size += 4 + n.length;
  const out = new Uint8Array(size);
  let pos = 0;
  for (const n of nals) {
    new DataView(out.buffer).setUint32(pos, n.length);
    out.set(n, pos + 4);
    pos += 4 + n.length;
  }
  return out;
}

/** What ffmpeg 5.1 announces for H.264 + AAC (`-f rtsp`). */
export const FFMPEG_ANNOUNCE = [
  "v=0",
  "o=- 0 0 IN IP4 127.0.0.1",
  "s=No Name",
  "c=IN IP4 127.0.0.1",
  "t=0 0",
  "a=tool:libavformat 59.27.100",
  "m=video 0 RTP/AVP 96",
  "b=AS:200",
  "a=rtpmap:96 H264/90000",
  "a=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z0LAHtoFB+Q=,aM48gA==; profile-level-id=42C01E",
  "a=control:streamid=0",
  "m=audio 0 RTP/AVP 97",
  "b=AS:128",
  "a=rtpmap:97 MPEG4-GENERIC/48000/2",
  "a=fmtp:97 profilelevelid=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3; config=1190",
  "a=control:streamid=1",
  "",
].join("\r\n");

/** `FFMPEG_ANNOUNCE` with 1 to 10 random characters replaced, removed or inserted. */
export function mutatedAnnounce(rand: () => number): string {
  const chars = "v=0amsbcto:/ \r\n96H264PCMUrtpmapfmtpcontrol;-,1234567890";
  const text = FFMPEG_ANNOUNCE.split("");
  for (let k = 0; k < 1 + Math.floor(rand() * 10); k++) {
    const at = Math.floor(rand() * text.length);
    const op = rand();
    if (op < 0.4) text[at] = chars[Math.floor(rand() * chars.length)];
    else if (op < 0.7) text.splice(at, 1);
    else text.splice(at, 0, chars[Math.floor(rand() * chars.length)]);
  }
  return text.join("");
}
