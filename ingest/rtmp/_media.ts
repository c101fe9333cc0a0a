/**
 * The media of one RTMP message stream turned into frames of the bus's contract: what the
 * server does with a publisher's messages and what the pull client does with a play's.
 *
 * @module
 */

import { ConfigGate, type MediaFrame } from "../../mod.ts";
import { FlvTagDecoder } from "../../media/flv/tag.ts";
import { TimestampUnwrapper } from "../../media/codec/timestamp.ts";
import { RtmpError } from "./error.ts";
import { MessageType, type RtmpMessage } from "./message.ts";

/**
 * Decodes the audio, video and aggregate messages of one message stream: FLV tag bodies to
 * frames on the 90 kHz clock (the 32-bit millisecond times unwrapped), media before its
 * track's sequence header dropped ({@linkcode ConfigGate}). Bad tag bodies throw
 * (`RangeError` from the FLV decoder, {@linkcode RtmpError} for an aggregate that overruns).
 */
export class RtmpMediaReader {
  readonly #decoder = new FlvTagDecoder();
  readonly #clock = new TimestampUnwrapper();
  readonly #gate = new ConfigGate();
  readonly #onFrame: (frame: MediaFrame) => void;

  /** A reader that hands each admitted frame to `onFrame`. */
  constructor(onFrame: (frame: MediaFrame) => void) {
    this.#onFrame = onFrame;
  }

  /** Take one message; returns whether it was media (audio, video or an aggregate). */
  take(message: RtmpMessage): boolean {
    switch (message.typeId) {
      case MessageType.AUDIO:
      case MessageType.VIDEO:
        this.#media(message.typeId, message.timestamp, message.payload);
        return true;
      case MessageType.AGGREGATE:
        this.#aggregate(message);
        return true;
      default:
        return false;
    }
  }

  #media(typeId: number, time: number, payload: Uint8Array): void {
    const ms = this.#clock.unwrap(time);
    const frame = typeId === MessageType.VIDEO
      ? this.#decoder.decodeVideo(payload, ms)
      : this.#decoder.decodeAudio(payload, ms);
    if (frame && this.#gate.admit(frame)) this.#onFrame(frame);
  }

  /** An aggregate message: FLV-tag-like sub-messages whose times are relative to the first. */
  #aggregate(message: RtmpMessage): void {
    const p = message.payload;
    let base: number | undefined;
    for (let o = 0; o + 11 <= p.length;) {
      const type = p[o];
      const size = p[o + 1] << 16 | p[o + 2] << 8 | p[o + 3];
      const time = (p[o + 4] << 16 | p[o + 5] << 8 | p[o + 6] | p[o + 7] << 24) >>> 0;
      if (o + 11 + size + 4 > p.length) throw new RtmpError("aggregate sub-message overruns");
      base ??= time;
      if (type === MessageType.AUDIO || type === MessageType.VIDEO) {
        const at = (message.timestamp + time - base) >>> 0;
        this.#media(type, at, p.subarray(o + 11, o + 11 + size));
      }
      o += 11 + size + 4;
    }
  }
}
