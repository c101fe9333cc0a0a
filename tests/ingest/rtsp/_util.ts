/** Helpers shared by the RTSP tests: RTP packets, payload collection, UDP ports. */

import dgram from "node:dgram";
import { RtpPacket, type RtpPayloadSink, writeRtpHeader } from "../../../ingest/rtsp/mod.ts";

export { hex, unhex } from "../rtmp/_util.ts";

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

/** A free even/odd UDP port pair on 127.0.0.1 (bound and released; fine for tests). */
export async function freeUdpPair(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20000 + 2 * Math.floor(Math.random() * 20000);
    const sockets: dgram.Socket[] = [];
    try {
      for (const p of [port, port + 1]) {
        const socket = dgram.createSocket("udp4");
        sockets.push(socket);
        await new Promise<void>((resolve, reject) => {
          socket.once("error", reject);
          socket.bind(p, "127.0.0.1", () => resolve());
        });
      }
      return port;
    } catch {
      // taken: try another
    } finally {
      await Promise.all(sockets.map((s) =>
        new Promise<void>((resolve) => {
          try {
            s.close(() => resolve());
          } catch {
            resolve(); // never bound
          }
        })
      ));
    }
  }
  throw new Error("no free UDP port pair");
}
