/**
 * RTSP 1.0 ingest and playback ({@linkcode serveRtsp}): publishers ANNOUNCE and RECORD,
 * players DESCRIBE and PLAY, over RTP/AVP/TCP (interleaved) or RTP/AVP over UDP, with
 * H.264, H.265, AAC and Opus; and the pull client ({@linkcode pullRtsp}) that plays a
 * camera's or another server's stream. The RTSP wire pieces are exported too: messages,
 * Transport headers and authentication. RTP and RTCP packets, SDP and each codec's RTP payload format
 * are protocol-independent and live in `@arcly/stream/rtp`.
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

export type * from "../../mod.ts";
export * from "./server.ts";
export type { TlsListenOptions } from "../tls.ts";
export type { PullClient, PullOptions } from "../pull.ts";
export * from "./auth.ts";
export * from "./message.ts";
export * from "./transport.ts";
export * from "./client.ts";
