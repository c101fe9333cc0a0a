/**
 * Audio transcoding between AAC and Opus, for viewers whose protocol cannot carry a
 * stream's audio codec: WebRTC carries Opus, RTMP, HTTP-FLV and MPEG-TS HLS carry AAC. The
 * codecs are ffmpeg's own AAC and Opus built to WebAssembly (`npm:@ffmpeg/core`, GPL-2.0 or
 * later), loaded only when a transcoder starts, one worker per transcoded stream.
 *
 * @module
 */

export type * from "../../mod.ts";
export * from "./transcoder.ts";
export * from "./views.ts";
