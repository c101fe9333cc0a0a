/**
 * HTTP Live Streaming: a packager from {@linkcode MediaFrame}s to MPEG-TS or
 * fMP4 segments with VOD, EVENT and live sliding-window playlists, written
 * through a small storage interface (a directory, or memory for a server), and a
 * playlist parser for clients that pull HLS.
 *
 * @example Package an FLV file as VOD with fMP4 segments
 * ```ts ignore
 * import { DirectoryStorage, HlsPackager } from "@arcly/stream/hls";
 * import { FlvReader } from "@arcly/stream/flv";
 *
 * const file = await Deno.open("in.flv");
 * await file.readable.pipeThrough(new FlvReader()).pipeTo(
 *   new HlsPackager({
 *     storage: new DirectoryStorage("out"),
 *     segmentType: "fmp4",
 *     playlistType: "vod",
 *   }),
 * );
 * ```
 *
 * @module
 */

export type { CodecId, MediaFrame, TrackKind } from "../../bus/frame.ts";
export * from "./storage.ts";
export * from "./playlist.ts";
export * from "./playlist_parser.ts";
export * from "./packager.ts";
