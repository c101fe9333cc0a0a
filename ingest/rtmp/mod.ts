/**
 * RTMP ingest and playback: the handshake, the chunk stream, protocol control
 * messages and (in {@linkcode serveRtmp}) a server that publishes into and plays
 * from a kernel {@linkcode Registry}.
 *
 * @module
 */

export * from "./error.ts";
export * from "./message.ts";
export * from "./chunk.ts";
export * from "./control.ts";
export {
  HANDSHAKE_SIZE,
  type HandshakeOptions,
  RTMP_VERSION,
  serverHandshake,
} from "./handshake.ts";
