/** Helpers shared by the RTSP tests: UDP ports, an SDP to announce. */

import dgram from "node:dgram";

export { hex, unhex } from "../../_util/bytes.ts";

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

/** Base64 of `n`, as SDP carries parameter sets. */
export const b64 = (n: Uint8Array) => btoa(String.fromCharCode(...n));

/**
 * An SDP announcing H.264 video (with `sps` and `pps` as sprop-parameter-sets, or without
 * parameter sets) and a PCMU audio track.
 */
export function announceSdp(sps?: Uint8Array, pps?: Uint8Array): string {
  const sprop = sps && pps ? `; sprop-parameter-sets=${b64(sps)},${b64(pps)}` : "";
  return [
    "v=0",
    "o=- 0 0 IN IP4 127.0.0.1",
    "s=test",
    "t=0 0",
    "m=video 0 RTP/AVP 96",
    "a=rtpmap:96 H264/90000",
    `a=fmtp:96 packetization-mode=1${sprop}`,
    "a=control:streamid=0",
    "m=audio 0 RTP/AVP 0",
    "a=control:streamid=1",
    "",
  ].join("\r\n");
}
