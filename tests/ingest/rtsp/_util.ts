/** Helpers shared by the RTSP tests: UDP ports, an SDP to announce, a synthetic H.264 stream. */

import dgram from "node:dgram";
import { FrameFlags, type MediaFrame, type Registry, type StreamHandle } from "../../../mod.ts";
import { buildAvcConfig } from "../../../media/codec/h264.ts";
import { videoFrame as syntheticFrame } from "../../_util/frames.ts";
import { au } from "../../media/rtp/_util.ts";

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

/** Baseline 3.0, 320x240. */
export const BASELINE_SPS = Uint8Array.of(0x67, 0x42, 0xc0, 0x1e, 0xda, 0x05, 0x07, 0xe4);
/** The picture parameter set that goes with {@linkcode BASELINE_SPS}. */
export const BASELINE_PPS = Uint8Array.of(0x68, 0xce, 0x3c, 0x80);

/** A video frame of one NAL unit of `size` bytes filled with `fill`: an IDR slice when `key`. */
export function videoFrame(pts: number, size: number, key = false, fill = 0x11): MediaFrame {
  const nal = new Uint8Array(size).fill(fill);
  nal[0] = key ? 0x65 : 0x41;
  return { ...syntheticFrame(pts, key), data: au(nal) };
}

/** Publishes `live/<name>`: an H.264 config and a keyframe of `size` bytes. */
export function syntheticStream(registry: Registry, name = "syn", size = 100): StreamHandle {
  const handle = registry.startPublish("live", name);
  handle.publish({
    track: 0,
    kind: "video",
    codec: "h264",
    pts: 0,
    dts: 0,
    flags: FrameFlags.CONFIG,
    data: buildAvcConfig({ sps: [BASELINE_SPS], pps: [BASELINE_PPS] }),
  });
  handle.publish(videoFrame(0, size, true));
  return handle;
}
