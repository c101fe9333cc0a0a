/**
 * One viewer's outgoing RTP stream: the stream's shared packets (`StreamPackets`, `_stream_packets.ts`)
 * handed to the viewer's werift sender as they are, with only what must differ per viewer
 * made here: the offsets that keep the viewer's sequence numbers continuous (across frames it
 * skipped and packets re-sent to it) and that move its RTP time after a keyframe request's
 * answer, and the headers of those re-sent packets.
 *
 * What werift's `RTCRtpSender.sendRtp` does with a packet (0.25.2), which is why packets can
 * be shared: it clones the header (`new RtpHeader({ ...header })`) and keeps the payload by
 * reference, so the packet given is never changed and one `RtpPacket` may be given to many
 * senders. On the clone it sets its own SSRC and negotiated payload type, adds its sequence
 * and timestamp offsets (its fields `seqOffset` and `timestampOffset`, private in its types,
 * 0 unless a track was replaced, which never happens here) and replaces the header extensions
 * with its negotiated ones (mid, abs-send-time, transport-wide sequence). It keeps the clone
 * in a 128-packet history for NACKs, then SRTP serializes the header and encrypts the payload
 * into a new buffer per packet (one AES context and HMAC per packet): that encryption is the
 * per-viewer copy, and unavoidable.
 *
 * @module
 */

import { type RTCRtpSender, RtpHeader, RtpPacket } from "werift";

/** The fields of werift's sender that offset every packet it sends (private in its types). */
interface SenderOffsets {
  seqOffset: number;
  timestampOffset: number;
}

/**
 * One outgoing RTP stream of one viewer. Sends without waiting between packets (werift
 * applies the offsets, encrypts and hands each packet to the socket before its promise), so
 * a frame's packets go out in order, on the offsets of the moment, and nothing else runs
 * between them.
 */
export class RtpOut {
  readonly #sender: RTCRtpSender;
  readonly #offsets: SenderOffsets;
  readonly #onError: (error: unknown) => void;
  /** The sequence number the viewer's next packet gets, once one was sent. */
  #next: number | undefined;
  /** The newest packet's send. */
  #sent: Promise<void> | undefined;

  /** Send through `sender`; a send that fails other than the last of a frame goes to `onError`. */
  constructor(sender: RTCRtpSender, onError: (error: unknown) => void) {
    const offsets = sender as unknown as SenderOffsets;
    if (typeof offsets.seqOffset !== "number" || typeof offsets.timestampOffset !== "number") {
      throw new Error("this werift's RTCRtpSender has no seqOffset and timestampOffset");
    }
    this.#sender = sender;
    this.#offsets = offsets;
    this.#onError = onError;
  }

  /**
   * What the sender adds to every later packet's RTP timestamp, in units of its clock: the
   * viewer's RTP time runs this far ahead of the stream's.
   */
  set timestampOffset(value: number) {
    this.#offsets.timestampOffset = value >>> 0;
  }

  /**
   * Send one frame's shared `packets` (consecutive sequence numbers), numbered right after
   * the last packet the viewer got. Returns the last packet's send, which settles once the
   * socket took it.
   */
  send(packets: readonly RtpPacket[]): Promise<void> | undefined {
    const first = packets[0].header.sequenceNumber;
    const offsets = this.#offsets;
    if (this.#next !== undefined) offsets.seqOffset = (this.#next - first) & 0xffff;
    this.#next = (first + offsets.seqOffset + packets.length) & 0xffff;
    for (const packet of packets) this.#send(packet);
    return this.#take();
  }

  /**
   * Send `packets` (a frame sent before) again as new packets of the viewer: the next
   * sequence numbers, stamped with the stream's RTP time `timestamp` (the sender adds the
   * timestamp offset). The payloads stay shared; only the headers are new.
   */
  resend(packets: readonly RtpPacket[], timestamp: number): Promise<void> | undefined {
    let sequence = ((this.#next ?? 0) - this.#offsets.seqOffset) & 0xffff;
    for (const { header, payload } of packets) {
      this.#send(
        new RtpPacket(new RtpHeader({ ...header, sequenceNumber: sequence, timestamp }), payload),
      );
      sequence = (sequence + 1) & 0xffff;
    }
    this.#next = (sequence + this.#offsets.seqOffset) & 0xffff;
    return this.#take();
  }

  #send(packet: RtpPacket): void {
    this.#sent?.catch(this.#onError);
    this.#sent = this.#sender.sendRtp(packet);
  }

  /** The last send of a frame, which its caller handles. */
  #take(): Promise<void> | undefined {
    const sent = this.#sent;
    this.#sent = undefined;
    return sent;
  }
}
