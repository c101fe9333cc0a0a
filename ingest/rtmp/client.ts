/**
 * An RTMP client that publishes: to another arcly-stream, nginx-rtmp, SRS, YouTube or Twitch
 * ingest, over TCP (`rtmp://`) or TLS (`rtmps://`). It does the plain handshake, `connect`, `createStream` and `publish`, then sends
 * each frame as one RTMP message, answering pings and acknowledging what it receives.
 *
 * @module
 */

import type { MediaFrame } from "../../mod.ts";
import {
  audioTagBodySize,
  videoTagBodySize,
  writeAudioTagBody,
  writeVideoTagBody,
} from "../../media/flv/tag.ts";
import type { Amf0Object, Amf0Value } from "../../media/flv/amf0.ts";
import { ChunkReader, ChunkWriter, readControlValue } from "./chunk.ts";
import { type Command, commandMessage, parseCommand } from "./command.ts";
import {
  acknowledgementMessage,
  parseUserControl,
  setChunkSizeMessage,
  UserControlEvent,
  userControlMessage,
} from "./control.ts";
import { RtmpError } from "./error.ts";
import { HANDSHAKE_SIZE, RTMP_VERSION } from "./handshake.ts";
import { MessageType, type RtmpMessage } from "./message.ts";
import { withDeadline as deadline } from "../_deadline.ts";

/** Options for {@linkcode RtmpPublisher.connect}. */
export interface RtmpPublisherOptions {
  /** Each step of the set-up (TCP connect, handshake, each command) must finish in this (default 10,000 ms). */
  timeoutMs?: number;
  /** Outgoing chunk size (default 4096). */
  chunkSize?: number;
  /**
   * `rtmps://`: the certificates (PEM) to trust instead of the system's roots, e.g. a
   * self-signed server's own certificate.
   */
  caCerts?: string[];
}

/** An `rtmp://` or `rtmps://host[:port]/app/stream` URL split as RTMP needs it. */
export interface RtmpUrl {
  /** Whether the connection is TLS (`rtmps://`). */
  tls: boolean;
  /** Host name or address. */
  hostname: string;
  /** TCP port (1935, or 443 for `rtmps://`, when the URL has none). */
  port: number;
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
 * // { tls: false, hostname: "example.com", port: 1935, app: "live",
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
  if (!tls && parsed.protocol !== "rtmp:") {
    throw new RangeError(`not an rtmp:// or rtmps:// URL: ${url}`);
  }
  const [, app, ...rest] = parsed.pathname.split("/");
  const stream = rest.join("/");
  if (!app || !stream) throw new RangeError(`an RTMP URL needs /APP/STREAM: ${url}`);
  const hostname = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = parsed.port ? Number(parsed.port) : tls ? 443 : 1935;
  const host = parsed.port ? `${parsed.hostname}:${parsed.port}` : parsed.hostname;
  return {
    tls,
    hostname,
    port,
    app: decodeURIComponent(app),
    tcUrl: `${tls ? "rtmps" : "rtmp"}://${host}/${app}`,
    stream: decodeURIComponent(stream) + parsed.search,
  };
}

/** The chunk streams the client sends on: commands, then audio and video. */
const COMMAND_CSID = 3;
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
  readonly #conn: Deno.TcpConn | Deno.TlsConn;
  readonly #timeoutMs: number;
  readonly #writer = new ChunkWriter();
  readonly #reader = new ChunkReader();
  readonly #commands: Command[] = [];
  readonly #ended = Promise.withResolvers<string>();
  #wake: (() => void) | undefined;
  #streamId = 0;
  #endReason: string | undefined;
  #window = 2_500_000;
  #acknowledged = 0;

  private constructor(conn: Deno.TcpConn | Deno.TlsConn, timeoutMs: number) {
    this.#conn = conn;
    this.#timeoutMs = timeoutMs;
  }

  /** Resolves with why the connection ended (the server closed it, a write failed, close()). */
  get closed(): Promise<string> {
    return this.#ended.promise;
  }

  /** Connect to `url` and start publishing its stream key. */
  static async connect(url: string, options: RtmpPublisherOptions = {}): Promise<RtmpPublisher> {
    const target = parseRtmpUrl(url);
    const timeoutMs = options.timeoutMs ?? 10_000;
    const address = { hostname: target.hostname, port: target.port };
    const connecting: Promise<Deno.TcpConn | Deno.TlsConn> = target.tls
      ? Deno.connectTls({ ...address, caCerts: options.caCerts })
      : Deno.connect(address);
    const conn = await withDeadline(
      connecting,
      timeoutMs,
      `connect to ${target.hostname}:${target.port}`,
    ).catch((error) => {
      // a connection made after the deadline is closed, not left open
      connecting.then((late) => late.close(), () => {});
      throw error;
    });
    const publisher = new RtmpPublisher(conn, timeoutMs);
    try {
      await publisher.#setUp(target, options.chunkSize ?? 4096);
    } catch (error) {
      publisher.#end(error instanceof Error ? error.message : String(error));
      throw error;
    }
    return publisher;
  }

  /** Send one frame (a CONFIG frame as a sequence header); rejects once the connection ended. */
  async write(frame: MediaFrame): Promise<void> {
    const video = frame.kind === "video";
    const payload = new Uint8Array(video ? videoTagBodySize(frame) : audioTagBodySize(frame));
    if (video) writeVideoTagBody(frame, payload, 0);
    else writeAudioTagBody(frame, payload, 0);
    await this.#send({
      csid: video ? VIDEO_CSID : AUDIO_CSID,
      typeId: video ? MessageType.VIDEO : MessageType.AUDIO,
      streamId: this.#streamId,
      timestamp: Math.max(0, Math.round(frame.dts / 90)) % 2 ** 32,
      payload,
    });
  }

  /** End the publish: the server sees the connection close. Idempotent. */
  close(): void {
    this.#end("closed");
  }

  async #setUp(target: RtmpUrl, chunkSize: number): Promise<void> {
    if ("setNoDelay" in this.#conn) this.#conn.setNoDelay(true);
    else await withDeadline(this.#conn.handshake(), this.#timeoutMs, "TLS handshake");
    await this.#handshake();
    void this.#pump();
    await this.#send(setChunkSizeMessage(chunkSize));
    this.#writer.chunkSize = chunkSize;
    await this.#command("connect", 1, {
      app: target.app,
      type: "nonprivate",
      flashVer: "FMLE/3.0 (compatible; arcly-stream)",
      tcUrl: target.tcUrl,
    });
    await this.#result(1, "connect");
    await this.#command("releaseStream", 2, null, target.stream);
    await this.#command("FCPublish", 3, null, target.stream);
    await this.#command("createStream", 4, null);
    const created = await this.#result(4, "createStream");
    this.#streamId = typeof created.args[0] === "number" ? created.args[0] : 1;
    await this.#command("publish", 5, null, target.stream, "live");
    const status = await this.#next((c) => c.name === "onStatus", "publish");
    const info = (status.args[0] ?? {}) as Amf0Object;
    if (info.code !== "NetStream.Publish.Start") {
      throw new RtmpError(`publish refused: ${info.code} ${info.description ?? ""}`.trim());
    }
  }

  /** The plain handshake: C0 C1, S0 S1 S2, C2 (the echo of S1). */
  async #handshake(): Promise<void> {
    const c0c1 = new Uint8Array(1 + HANDSHAKE_SIZE);
    c0c1[0] = RTMP_VERSION;
    crypto.getRandomValues(c0c1.subarray(9));
    await this.#writeAll(c0c1);
    const s = new Uint8Array(1 + 2 * HANDSHAKE_SIZE);
    for (let got = 0; got < s.length;) {
      const n = await withDeadline(this.#conn.read(s.subarray(got)), this.#timeoutMs, "handshake");
      if (n === null) throw new RtmpError("the server closed the connection in the handshake");
      got += n;
    }
    if (s[0] !== RTMP_VERSION) throw new RtmpError(`the server speaks RTMP version ${s[0]}`);
    await this.#writeAll(s.subarray(1, 1 + HANDSHAKE_SIZE));
  }

  /** Read what the server sends until the connection ends; commands go to the set-up. */
  async #pump(): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await this.#conn.read(buffer);
        if (n === null) return this.#end("the server closed the connection");
        for (const message of this.#reader.push(buffer.subarray(0, n))) await this.#take(message);
        const received = this.#reader.bytesReceived;
        if (received - this.#acknowledged >= this.#window) {
          this.#acknowledged = received;
          await this.#send(acknowledgementMessage(received % 2 ** 32));
        }
      }
    } catch (error) {
      this.#end(error instanceof Error ? error.message : String(error));
    }
  }

  async #take(message: RtmpMessage): Promise<void> {
    switch (message.typeId) {
      case MessageType.COMMAND_AMF0: {
        const command = parseCommand(message.payload);
        const info = (command.args[0] ?? {}) as Amf0Object;
        if (this.#streamId !== 0 && command.name === "onStatus" && info.level === "error") {
          return this.#end(`the server ended the publish: ${info.code}`);
        }
        this.#commands.push(command);
        this.#wake?.();
        return;
      }
      case MessageType.WINDOW_ACK_SIZE:
        this.#window = Math.max(
          1,
          readControlValue(message.payload, "Window Acknowledgement Size"),
        );
        return;
      case MessageType.USER_CONTROL: {
        const event = parseUserControl(message.payload);
        if (event.event === UserControlEvent.PING_REQUEST) {
          await this.#send(userControlMessage(UserControlEvent.PING_RESPONSE, event.value));
        }
        return;
      }
    }
  }

  #command(name: string, transaction: number, object: Amf0Value, ...args: Amf0Value[]) {
    return this.#send(
      commandMessage(
        COMMAND_CSID,
        name === "publish" ? this.#streamId : 0,
        name,
        transaction,
        object,
        ...args,
      ),
    );
  }

  async #result(transaction: number, what: string): Promise<Command> {
    const answer = await this.#next(
      (c) => (c.name === "_result" || c.name === "_error") && c.transactionId === transaction,
      what,
    );
    if (answer.name === "_error") {
      const info = (answer.args[0] ?? {}) as Amf0Object;
      throw new RtmpError(`${what} refused: ${info.code ?? ""} ${info.description ?? ""}`.trim());
    }
    return answer;
  }

  /** The first command from the server that `match`es, waiting up to the timeout. */
  async #next(match: (command: Command) => boolean, what: string): Promise<Command> {
    const deadline = performance.now() + this.#timeoutMs;
    for (;;) {
      const at = this.#commands.findIndex(match);
      if (at >= 0) return this.#commands.splice(at, 1)[0];
      if (this.#endReason !== undefined) throw new RtmpError(`${what}: ${this.#endReason}`);
      const left = deadline - performance.now();
      if (left <= 0) throw new RtmpError(`${what}: no answer within ${this.#timeoutMs} ms`);
      const woken = new Promise<void>((resolve) => (this.#wake = resolve));
      await withDeadline(woken, left, what).catch(() => {});
    }
  }

  #send(message: RtmpMessage): Promise<void> {
    return this.#writeAll(this.#writer.encode(message));
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    if (this.#endReason !== undefined) throw new RtmpError(`publish ended: ${this.#endReason}`);
    try {
      for (let at = 0; at < bytes.length;) at += await this.#conn.write(bytes.subarray(at));
    } catch (error) {
      this.#end(`write failed: ${error instanceof Error ? error.message : error}`);
      throw new RtmpError(`publish ended: ${this.#endReason}`);
    }
  }

  #end(reason: string): void {
    if (this.#endReason !== undefined) return;
    this.#endReason = reason;
    this.#wake?.();
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
    this.#ended.resolve(reason);
  }
}

/** Rejects with an {@linkcode RtmpError} after `ms` unless `promise` settles first. */
function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return deadline(promise, ms, () => new RtmpError(`${what}: no answer within ${ms} ms`));
}
