/**
 * RTMP clients: {@linkcode RtmpPublisher} publishes to another server (arcly-stream,
 * nginx-rtmp, SRS, YouTube or Twitch ingest) and {@linkcode pullRtmp} plays a stream from
 * one as frames. Both do the plain handshake and `connect` (over TLS for `rtmps://`), answer
 * pings and acknowledge what they receive.
 *
 * @module
 */

import { escapeForLog, type MediaFrame, silentLogger } from "../../mod.ts";
import {
  audioTagBodySize,
  videoTagBodySize,
  writeAudioTagBody,
  writeVideoTagBody,
} from "../../media/flv/tag.ts";
import type { Amf0Object } from "../../media/flv/amf0.ts";
import type { PullOptions } from "../pull.ts";
import { UserControlEvent, userControlMessage } from "./control.ts";
import { RtmpError } from "./error.ts";
import { MessageType } from "./message.ts";
import { RtmpClientConnection } from "./_client_connection.ts";
import { RtmpMediaReader } from "./_media.ts";

/** Options for {@linkcode RtmpPublisher.connect}. */
export interface RtmpPublisherOptions {
  /** Each step of the set-up (TCP connect, handshake, each command) must finish in this (default 10,000 ms). */
  timeoutMs?: number;
  /** Outgoing chunk size (default 4096). */
  chunkSize?: number;
  /** Trust anchors (PEM certificates) for an `rtmps://` server besides the system's. */
  caCerts?: string[];
}

/** An `rtmp://` or `rtmps://` `host[:port]/app/stream` URL split as RTMP needs it. */
export interface RtmpUrl {
  /** Host name or address. */
  hostname: string;
  /** TCP port (when the URL has none: 1935, or 443 for `rtmps://`). */
  port: number;
  /** Whether it is RTMP over TLS (`rtmps://`). */
  tls: boolean;
  /** The application: the first path segment. */
  app: string;
  /** What `connect` sends as `tcUrl`: the URL up to and with the app. */
  tcUrl: string;
  /** The stream key: the rest of the path, with the query (credentials, tokens). */
  stream: string;
}

/**
 * Splits an RTMP URL: the first path segment is the app, the rest (and the query) the key.
 *
 * @throws {RangeError} when it is not an `rtmp://` or `rtmps://` URL with an app and a stream.
 * @example
 * ```ts
 * import { parseRtmpUrl } from "@arcly/stream/rtmp";
 *
 * parseRtmpUrl("rtmp://example.com/live/cam?token=x");
 * // { hostname: "example.com", port: 1935, tls: false, app: "live",
 * //   tcUrl: "rtmp://example.com/live", stream: "cam?token=x" }
 * ```
 */
export function parseRtmpUrl(url: string): RtmpUrl {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new RangeError(`not a URL: ${url}`);
  }
  const tls = parsed.protocol === "rtmps:";
  if (!tls && parsed.protocol !== "rtmp:") throw new RangeError(`not an rtmp:// URL: ${url}`);
  const [, app, ...rest] = parsed.pathname.split("/");
  const stream = rest.join("/");
  if (!app || !stream) throw new RangeError(`an RTMP URL needs /APP/STREAM: ${url}`);
  const hostname = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = parsed.port ? Number(parsed.port) : tls ? 443 : 1935;
  const host = parsed.port ? `${parsed.hostname}:${parsed.port}` : parsed.hostname;
  return {
    hostname,
    port,
    tls,
    app: decodeURIComponent(app),
    tcUrl: `${parsed.protocol}//${host}/${app}`,
    stream: decodeURIComponent(stream) + parsed.search,
  };
}

/** The chunk streams the client sends media on. */
const AUDIO_CSID = 4;
const VIDEO_CSID = 6;

/**
 * One publish to an RTMP server. {@linkcode RtmpPublisher.connect} resolves once the server
 * said `NetStream.Publish.Start` (and rejects with the server's own reason otherwise); then
 * {@linkcode RtmpPublisher.write} sends frames (configs first, as the kernel gives them), and
 * {@linkcode RtmpPublisher.closed} resolves with the reason once the connection has ended.
 *
 * @example
 * ```ts ignore
 * import { RtmpPublisher } from "@arcly/stream/rtmp";
 *
 * const out = await RtmpPublisher.connect("rtmp://127.0.0.1/live/copy");
 * for await (const frame of handle.subscribe({ replay: true })) await out.write(frame);
 * out.close();
 * ```
 */
export class RtmpPublisher {
  readonly #connection: RtmpClientConnection;
  readonly #streamId: number;
  readonly #closed: Promise<string>;

  private constructor(connection: RtmpClientConnection, streamId: number) {
    this.#connection = connection;
    this.#streamId = streamId;
    this.#closed = connection.ended.then((end) => end.reason);
  }

  /** Resolves with why the connection ended (the server closed it, a write failed, close()). */
  get closed(): Promise<string> {
    return this.#closed;
  }

  /** Connect to `url` and start publishing its stream key. */
  static async connect(url: string, options: RtmpPublisherOptions = {}): Promise<RtmpPublisher> {
    const target = parseRtmpUrl(url);
    const connection = await RtmpClientConnection.open(target, {
      timeoutMs: options.timeoutMs ?? 10_000,
      chunkSize: options.chunkSize ?? 4096,
      connectProperties: { type: "nonprivate", flashVer: "FMLE/3.0 (compatible; arcly-stream)" },
      caCerts: options.caCerts,
    });
    try {
      await connection.command("releaseStream", 2, 0, null, target.stream);
      await connection.command("FCPublish", 3, 0, null, target.stream);
      await connection.command("createStream", 4, 0, null);
      const created = await connection.result(4, "createStream");
      const streamId = typeof created.args[0] === "number" ? created.args[0] : 1;
      await connection.command("publish", 5, streamId, null, target.stream, "live");
      const status = await connection.next((c) => c.name === "onStatus", "publish");
      const info = (status.args[0] ?? {}) as Amf0Object;
      if (info.code !== "NetStream.Publish.Start") {
        throw new RtmpError(`publish refused: ${info.code} ${info.description ?? ""}`.trim());
      }
      connection.handleCommands((command) => {
        const info = (command.args[0] ?? {}) as Amf0Object;
        if (command.name === "onStatus" && info.level === "error") {
          connection.end(`the server ended the publish: ${info.code}`);
        }
      });
      return new RtmpPublisher(connection, streamId);
    } catch (error) {
      connection.end(error instanceof Error ? error.message : String(error));
      throw error;
    }
  }

  /** Send one frame (a CONFIG frame as a sequence header); rejects once the connection ended. */
  write(frame: MediaFrame): Promise<void> {
    const video = frame.kind === "video";
    const payload = new Uint8Array(video ? videoTagBodySize(frame) : audioTagBodySize(frame));
    if (video) writeVideoTagBody(frame, payload, 0);
    else writeAudioTagBody(frame, payload, 0);
    return this.#connection.send({
      csid: video ? VIDEO_CSID : AUDIO_CSID,
      typeId: video ? MessageType.VIDEO : MessageType.AUDIO,
      streamId: this.#streamId,
      timestamp: Math.max(0, Math.round(frame.dts / 90)) % 2 ** 32,
      payload,
    });
  }

  /** End the publish: the server sees the connection close. Idempotent. */
  close(): void {
    this.#connection.end("closed");
  }
}

/** Options of {@linkcode pullRtmp}: those of every pull client, and TLS trust for `rtmps://`. */
export interface RtmpPullOptions extends PullOptions {
  /** Trust anchors (PEM certificates) for an `rtmps://` server besides the system's. */
  caCerts?: string[];
}

/** How long the client asks the server to buffer (`SetBufferLength`), as ffmpeg does. */
const PLAY_BUFFER_MS = 3000;

/** Status codes that end a play normally: the stream stopped or its publisher left. */
const PLAY_ENDED = new Set(["NetStream.Play.Stop", "NetStream.Play.UnpublishNotify"]);

/**
 * Plays `url` (`rtmp://host[:port]/app/stream`, or `rtmps://` over TLS) from an RTMP server —
 * another arcly-stream, nginx-rtmp, SRS, MediaMTX, an encoder's RTMP output — and hands its
 * media to `options.onFrame` as frames of the kernel's contract (H.264/H.265/AV1 and AAC/MP3/Opus
 * as FLV or Enhanced RTMP carries them; media before its sequence header dropped).
 *
 * It does the handshake, `connect`, `createStream` and `play`, acknowledges and answers pings,
 * and ends:
 * - resolved when the server ends the stream (the user control event StreamEOF, or an
 *   `onStatus` `NetStream.Play.Stop` or `NetStream.Play.UnpublishNotify`), closes the
 *   connection once the play started, or `options.signal` aborts;
 * - rejected with an `RtmpError` saying why when a step is refused (`_error`, an `onStatus` of
 *   level `error` such as `NetStream.Play.StreamNotFound`), takes longer than `timeoutMs`, no
 *   media arrives for `timeoutMs`, or the server sends what cannot be parsed.
 *
 * @example
 * ```ts ignore
 * import { Registry } from "@arcly/stream";
 * import { pullRtmp } from "@arcly/stream/rtmp";
 *
 * const registry = new Registry();
 * const handle = registry.startPublish("live", "copy", { protocol: "rtmp-pull" });
 * const stop = new AbortController();
 * await pullRtmp(new URL("rtmp://origin.example/live/cam"), {
 *   onFrame: (frame) => handle.publish(frame),
 *   signal: stop.signal,
 *   logger: console,
 * });
 * registry.endPublish(handle, "ended");
 * ```
 */
export async function pullRtmp(url: URL, options: RtmpPullOptions): Promise<void> {
  const target = parseRtmpUrl(url.href);
  const { signal } = options;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const logger = options.logger ?? silentLogger;
  const shown = escapeForLog(
    `${url.protocol}//${url.host}${url.pathname}${url.search ? "?…" : ""}`,
  );
  if (signal?.aborted) return;
  const media = new RtmpMediaReader(options.onFrame);
  let lastMedia = performance.now();
  /** The play's message stream, and whether the server said it started. */
  const play = { streamId: 0, started: false };
  let connection: RtmpClientConnection | undefined;
  try {
    connection = await RtmpClientConnection.open(target, {
      timeoutMs,
      chunkSize: 4096,
      connectProperties: PLAYER_CONNECT,
      caCerts: options.caCerts,
      signal,
      // One play per connection: every media message is the play's.
      onMessage: (message) => {
        if (media.take(message)) lastMedia = performance.now();
      },
      onUserControl: (event) => {
        if (
          event.event === UserControlEvent.STREAM_EOF && play.started &&
          event.value === play.streamId
        ) {
          connection!.end("the server ended the stream (StreamEOF)", "peer");
        }
      },
    });
    play.streamId = await startPlay(connection, target.stream);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    connection?.end(why, "failed");
    if (signal?.aborted) return;
    logger.warn(`rtmp pull ${shown}: ${escapeForLog(why)}`);
    throw error instanceof Error ? error : new RtmpError(why);
  }
  logger.info(`rtmp pull ${shown}: playing`);
  play.started = true;
  connection.handleCommands((command) => {
    const info = (command.args[0] ?? {}) as Amf0Object;
    if (command.name !== "onStatus") return;
    if (info.level === "error") connection.end(`${info.code} ${info.description ?? ""}`, "failed");
    else if (PLAY_ENDED.has(String(info.code))) connection.end(String(info.code), "peer");
  });
  lastMedia = performance.now();
  const silence = setInterval(() => {
    if (performance.now() - lastMedia > timeoutMs) {
      connection.end(`no media for ${timeoutMs} ms`, "failed");
    }
  }, Math.max(10, timeoutMs / 4));
  const end = await connection.ended;
  clearInterval(silence);
  const why = escapeForLog(end.reason);
  if (end.by !== "failed") return logger.info(`rtmp pull ${shown}: ended: ${why}`);
  logger.warn(`rtmp pull ${shown}: failed: ${why}`);
  throw new RtmpError(why);
}

/** What a player's `connect` says of itself besides `app` and `tcUrl` (as ffmpeg's does). */
const PLAYER_CONNECT: Amf0Object = {
  flashVer: "LNX 9,0,124,2",
  fpad: false,
  capabilities: 15,
  audioCodecs: 4071,
  videoCodecs: 252,
  videoFunction: 1,
  fourCcList: ["avc1", "hvc1", "av01"],
};

/**
 * `createStream` and `play` on a connected connection, up to `NetStream.Play.Start`; the
 * play's message stream id. Rejects with the server's code and description when it refuses.
 */
async function startPlay(connection: RtmpClientConnection, stream: string): Promise<number> {
  await connection.command("createStream", 2, 0, null);
  const created = await connection.result(2, "createStream");
  const streamId = typeof created.args[0] === "number" ? created.args[0] : 1;
  await connection.command("play", 0, streamId, null, stream, -2);
  await connection.send(
    userControlMessage(UserControlEvent.SET_BUFFER_LENGTH, streamId, PLAY_BUFFER_MS),
  );
  const status = await connection.next((c) => {
    const info = (c.args[0] ?? {}) as Amf0Object;
    return c.name === "onStatus" &&
      (info.level === "error" || info.code === "NetStream.Play.Start");
  }, "play");
  const info = (status.args[0] ?? {}) as Amf0Object;
  if (info.level === "error") {
    throw new RtmpError(
      escapeForLog(`play refused: ${info.code} ${info.description ?? ""}`.trim()),
    );
  }
  return streamId;
}
