/**
 * SRT (Secure Reliable Transport) ingest and playback: a listener that accepts MPEG-TS
 * publishers and readers over UDP with loss recovery and, with a passphrase, AES-CTR
 * encryption ({@linkcode serveSrt}), the handshake, packet and Key Material codecs it is
 * built on, and Stream ID parsing. Written from
 * draft-sharabayko-srt and checked against libsrt (ffmpeg, srt-live-transmit).
 *
 * @example Serve SRT
 * ```ts
 * import { Registry } from "@arcly/stream";
 * import { serveSrt } from "@arcly/stream/srt";
 *
 * const server = await serveSrt({ registry: new Registry(), hostname: "127.0.0.1", port: 0 });
 * // ffmpeg -re -i in.ts -c copy -f mpegts 'srt://127.0.0.1:PORT?streamid=publish:live/cam'
 * // ffplay 'srt://127.0.0.1:PORT?streamid=read:live/cam'
 * await server.close();
 * ```
 *
 * @example Encrypted streams
 * ```ts
 * import { Registry } from "@arcly/stream";
 * import { serveSrt } from "@arcly/stream/srt";
 *
 * const server = await serveSrt({
 *   registry: new Registry(),
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   passphrase: (r) => (r.app === "secure" ? "correct horse battery" : undefined),
 * });
 * // ffmpeg ... 'srt://127.0.0.1:PORT?streamid=publish:secure/cam&passphrase=correct horse battery&pbkeylen=32'
 * await server.close();
 * ```
 *
 * @module
 */

export type * from "../../mod.ts";
export type { PullClient, PullOptions } from "../pull.ts";
export * from "./error.ts";
export * from "./packet.ts";
export * from "./handshake.ts";
export * from "./stream_id.ts";
export * from "./server.ts";
export type { ReceiverStats } from "./_receiver.ts";
export type { SenderStats } from "./_sender.ts";
export * from "./key_material.ts";
export * from "./url.ts";
export * from "./caller.ts";
export * from "./publisher.ts";
