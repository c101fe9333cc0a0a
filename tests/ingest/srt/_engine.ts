/** Fakes for driving the SRT engines without sockets: a recording link and data packets. */

import { PacketPosition, writeDataHeader } from "../../../ingest/srt/mod.ts";
import type { Link } from "../../../ingest/srt/_receiver.ts";

/** A link that records what an engine sends, with timestamps = `offset` + µs of `nowMs`. */
export class RecordingLink implements Link {
  readonly peerSocketId = 0x0bad_cafe;
  /** Copies of every packet sent, in order. */
  readonly sent: Uint8Array[] = [];
  readonly #offset: number;

  constructor(offsetUs = 0) {
    this.#offset = offsetUs;
  }

  timestamp(nowMs: number): number {
    return (this.#offset + Math.floor(nowMs * 1000)) >>> 0;
  }

  send(packet: Uint8Array): void {
    this.sent.push(packet.slice());
  }

  /** Whether the link reports its send queue backed up (set by a test). */
  sendQueueBackedUp = false;

  backedUp(): boolean {
    return this.sendQueueBackedUp;
  }

  /** Take the packets sent so far. */
  drain(): Uint8Array[] {
    return this.sent.splice(0);
  }
}

/** A data packet with `payload` (default: 4 bytes naming `seq`). */
export function dataPacket(
  seq: number,
  timestamp: number,
  payload = new Uint8Array([seq >>> 24, seq >>> 16, seq >>> 8, seq]),
  retransmitted = false,
): Uint8Array {
  const out = new Uint8Array(16 + payload.length);
  writeDataHeader(out, {
    seq,
    position: PacketPosition.SOLO,
    inOrder: true,
    key: 0,
    retransmitted,
    msgNo: 1,
    timestamp,
    socketId: 1,
  });
  out.set(payload, 16);
  return out;
}
