/**
 * The RTP packets of one stream for its WHEP viewers, made once per frame and given to every
 * viewer's werift sender as the same objects: the stream's H.264 video and Opus audio
 * tracks, each packetized by one {@linkcode RtpFramePacketizer} (one SSRC, sequence and RTP
 * time base per track, one time origin for both), and each packet wrapped once as a werift
 * `RtpPacket` whose payload is a view of the shared bytes. werift clones the header of a
 * packet it sends and keeps the payload by reference, so nothing here is copied per viewer.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { RtpPacket } from "werift";
import type { MediaFrame } from "../../mod.ts";
import {
  RtpFramePacketizer,
  type RtpFramePackets,
  RtpTimeOrigin,
} from "../../media/rtp/frame_packetizer.ts";

/** RTP payload bytes per packet: fits a 1280-byte IPv6 MTU after SRTP and extensions. */
const MAX_PAYLOAD = 1150;

/** The output form (see `StreamHandle.derive`) whose value is a {@linkcode StreamPackets}. */
export const STREAM_PACKETS_FORM = `webrtc/rtp/${MAX_PAYLOAD}`;

/** The packets of one stream's video and audio, shared by every WHEP viewer of it. */
export class StreamPackets {
  /** The H.264 video packets (payload type and SSRC are each sender's own). */
  readonly video: RtpFramePacketizer;
  /** The Opus audio packets. */
  readonly audio: RtpFramePacketizer;
  readonly #wrapped = new WeakMap<RtpFramePackets, readonly RtpPacket[]>();

  /** Packetizers for a new stream (random SSRCs, sequence numbers and RTP time bases). */
  constructor() {
    const origin = new RtpTimeOrigin();
    const options = { maxPayload: MAX_PAYLOAD, origin };
    this.video = new RtpFramePacketizer(
      { codec: "h264", payloadType: 96, clockRate: 90000 },
      options,
    );
    this.audio = new RtpFramePacketizer(
      { codec: "opus", payloadType: 111, clockRate: 48000 },
      options,
    );
  }

  /**
   * The packets of `frame`, made on the first call for it (see
   * {@linkcode RtpFramePacketizer.packets}: none for a config frame, whose parameter sets go
   * before later keyframes, another codec's frame, a malformed or a stale one).
   */
  packets(frame: MediaFrame): readonly RtpPacket[] | undefined {
    const made = (frame.kind === "video" ? this.video : this.audio).packets(frame);
    if (made === undefined) return undefined;
    let wrapped = this.#wrapped.get(made);
    if (wrapped === undefined) {
      wrapped = made.packets.map((p) =>
        RtpPacket.deSerialize(Buffer.from(p.buffer, p.byteOffset, p.length))
      );
      this.#wrapped.set(made, wrapped);
    }
    return wrapped;
  }
}
