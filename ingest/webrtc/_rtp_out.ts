/**
 * The one place a WHEP frame becomes RTP: a frame in, its packets handed to one werift
 * sender. Today each viewer packetizes for itself; a per-stream packetizer shared by every
 * viewer would replace what is inside {@linkcode RtpOut.sendFrame} and nothing around it.
 *
 * What werift's `RTCRtpSender.sendRtp` does with a packet (0.25.2), which decides how far
 * packets can be shared: it clones the header (`new RtpHeader({ ...header })`) and keeps the
 * payload by reference, so the packet given is never changed and one `RtpPacket` may be given
 * to many senders. On the clone it sets its own SSRC and negotiated payload type, adds its
 * sequence and timestamp offsets (0 unless a track was replaced) and replaces the header
 * extensions with its negotiated ones (mid, abs-send-time, transport-wide sequence). It keeps
 * the clone in a 128-packet history for NACKs, then SRTP serializes the header and encrypts
 * the payload into a new buffer per packet (one AES context and HMAC per packet): that
 * encryption, not the packetizing, is the per-viewer copy.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { type RTCRtpSender, RtpHeader, RtpPacket } from "werift";
import type { MediaFrame } from "../../mod.ts";
import { H264Packetizer } from "../../media/rtp/h264.ts";
import type { RtpPayloadSink } from "../../media/rtp/payload.ts";

/** RTP payload bytes per packet: fits a 1280-byte IPv6 MTU after SRTP and extensions. */
const MAX_PAYLOAD = 1150;
const TWO_32 = 2 ** 32;

/**
 * One outgoing RTP stream of one viewer: its sender, sequence numbers and clock. Sends
 * without waiting between packets (werift encrypts and hands each to the socket before its
 * promise), so a frame's packets go out in order and nothing else runs between them.
 */
export class RtpOut implements RtpPayloadSink {
  readonly #sender: RTCRtpSender;
  readonly #rate: number;
  readonly #packetizer = new H264Packetizer(MAX_PAYLOAD);
  readonly #onError: (error: unknown) => void;
  #sequence = Math.floor(Math.random() * 0x10000);
  #timestamp = 0;
  #chunk = new Uint8Array(MAX_PAYLOAD + 16);
  #length = 0;
  /** The newest packet's send. */
  #sent: Promise<void> | undefined;

  /**
   * Send through `sender` on a `rate` Hz RTP clock; a send that fails other than the last
   * of a frame goes to `onError`.
   */
  constructor(sender: RTCRtpSender, rate: number, onError: (error: unknown) => void) {
    this.#sender = sender;
    this.#rate = rate;
    this.#onError = onError;
  }

  /**
   * Send `frame` stamped with the 90 kHz time `pts`: H.264 packetized after the NAL units of
   * `prefix`, anything else (an Opus frame) as one packet. Returns the last packet's send,
   * which settles once the socket took it (none for a frame with no bytes).
   */
  sendFrame(
    frame: MediaFrame,
    pts: number,
    prefix: readonly Uint8Array[] = [],
  ): Promise<void> | undefined {
    const ts = Math.round(pts * this.#rate / 90000) % TWO_32;
    this.#timestamp = ts < 0 ? ts + TWO_32 : ts;
    if (frame.codec === "h264") this.#packetizer.packetize(frame.data, this, prefix);
    else this.#packet(frame.data, false);
    const sent = this.#sent;
    this.#sent = undefined;
    return sent;
  }

  /** Start a packet ({@linkcode RtpPayloadSink}). */
  begin(): void {
    this.#length = 0;
  }

  /** Append bytes to the packet ({@linkcode RtpPayloadSink}). */
  write(bytes: Uint8Array): void {
    this.#chunk.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  /** Append one byte to the packet ({@linkcode RtpPayloadSink}). */
  writeByte(value: number): void {
    this.#chunk[this.#length++] = value;
  }

  /** Send the packet ({@linkcode RtpPayloadSink}). */
  end(marker: boolean): void {
    this.#packet(this.#chunk.slice(0, this.#length), marker);
  }

  /** Send one packet with `payload` (the packet's from now on). */
  #packet(payload: Uint8Array, marker: boolean): void {
    const header = new RtpHeader({
      payloadType: 0, // the sender puts the negotiated one in
      sequenceNumber: this.#sequence,
      timestamp: this.#timestamp,
      marker,
    });
    this.#sequence = (this.#sequence + 1) & 0xffff;
    this.#sent?.catch(this.#onError);
    this.#sent = this.#sender.sendRtp(
      new RtpPacket(header, Buffer.from(payload.buffer, payload.byteOffset, payload.length)),
    );
  }
}
