/**
 * RTP for every protocol that carries it (RTSP, WebRTC…): RTP packets (RFC 3550),
 * RTCP sender reports, SDP (RFC 8866) with its `rtpmap`/`fmtp` attributes, and the RTP
 * payload formats of H.264 (RFC 6184), H.265 (RFC 7798), AAC (RFC 3640) and Opus
 * (RFC 7587): packetizers from access units to payloads and depacketizers back, and
 * {@linkcode RtpFramePacketizer}, which makes a stream track's packets once per frame for
 * every viewer.
 *
 * @example Packetize an H.264 access unit and reassemble it
 * ```ts
 * import { H264Depacketizer, H264Packetizer, RtpPacket, writeRtpHeader } from "@arcly/stream/rtp";
 *
 * // One IDR slice NAL unit with a 4-byte length prefix, too big for one 1200-byte payload.
 * const au = new Uint8Array(4 + 3000);
 * new DataView(au.buffer).setUint32(0, 3000);
 * au[4] = 0x65;
 *
 * const received: Uint8Array[] = [];
 * const depacketizer = new H264Depacketizer((_timestamp, data) => received.push(data));
 * const packet = new RtpPacket();
 * let sequence = 0;
 * let bytes: number[] = [];
 * new H264Packetizer(1200).packetize(au, {
 *   begin() {
 *     bytes = [];
 *   },
 *   write(chunk) {
 *     bytes.push(...chunk);
 *   },
 *   writeByte(value) {
 *     bytes.push(value);
 *   },
 *   end(marker) {
 *     const out = new Uint8Array(12 + bytes.length);
 *     writeRtpHeader(out, 0, { payloadType: 96, marker, sequence: sequence++, timestamp: 0, ssrc: 1 });
 *     out.set(bytes, 12);
 *     depacketizer.push(packet.parse(out));
 *   },
 * });
 * console.log(sequence, received[0].length); // 3 3004 (FU-A fragments)
 * ```
 *
 * @module
 */

export * from "./packet.ts";
export * from "./rtcp.ts";
export * from "./sdp.ts";
export * from "./payload.ts";
export * from "./h264.ts";
export * from "./h265.ts";
export * from "./aac.ts";
export * from "./latm.ts";
export * from "./opus.ts";
export * from "./frame_packetizer.ts";
export * from "./picture_order.ts";
export * from "./decode_time.ts";
// The parameter set types the picture-order states name, so this page documents itself.
export type { H264Sps } from "../codec/h264.ts";
export type { H265ProfileTierLevel, H265Sps } from "../codec/h265.ts";
// The kernel types the frame packetizer names.
export type { CodecId, MediaFrame, TrackKind } from "../../bus/frame.ts";
