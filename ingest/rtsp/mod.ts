/**
 * RTSP 1.0 ingest and playback ({@linkcode serveRtsp}): publishers ANNOUNCE and RECORD,
 * players DESCRIBE and PLAY, over RTP/AVP/TCP (interleaved) or RTP/AVP over UDP, with
 * H.264, H.265, AAC and Opus. The wire pieces are exported too: RTSP messages, SDP,
 * Transport headers, RTP and RTCP packets, and each codec's RTP payload format.
 *
 * @example Serve RTSP
 * ```ts
 * import { Registry } from "@arcly/stream";
 * import { serveRtsp } from "@arcly/stream/rtsp";
 *
 * const server = serveRtsp({ registry: new Registry(), hostname: "127.0.0.1", port: 0, udp: false });
 * // ffmpeg -re -i in.mp4 -c copy -f rtsp rtsp://127.0.0.1:PORT/live/cam
 * await server.close();
 * ```
 *
 * @module
 */

export * from "./server.ts";
export * from "./auth.ts";
export * from "./message.ts";
export * from "./sdp.ts";
export * from "./transport.ts";
export * from "./rtp.ts";
export * from "./rtcp.ts";
export * from "./payload.ts";
export * from "./rtp_h264.ts";
export * from "./rtp_h265.ts";
export * from "./rtp_aac.ts";
export * from "./rtp_opus.ts";
