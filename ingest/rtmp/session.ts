/**
 * One RTMP connection on the server: handshake, chunk stream, the command flow of
 * publishers and players, and moving frames between the wire and the registry.
 *
 * @module
 */

import {
  audioConfigOf,
  type TranscodedLease,
  type TranscodedViews,
} from "../../media/transcode/views.ts";
import {
  EncodedFrames,
  escapeForLog,
  FrameFlags,
  type Logger,
  type MediaFrame,
  type PlayResult,
  type PlaySink,
  PublishError,
  type Registry,
  type StreamHandle,
} from "../../mod.ts";
import type { Amf0Object, Amf0Value } from "../../media/flv/amf0.ts";
import { encodeAudioTag, encodeVideoTag } from "../../media/flv/tag.ts";
import { ChunkReader, ChunkWriter, readControlValue } from "./chunk.ts";
import {
  type Command,
  commandMessage,
  dataMessage,
  parseCommand,
  parseData,
  statusInfo,
} from "./command.ts";
import {
  acknowledgementMessage,
  parseUserControl,
  setChunkSizeMessage,
  setPeerBandwidthMessage,
  UserControlEvent,
  userControlMessage,
  windowAckSizeMessage,
} from "./control.ts";
import { RtmpError } from "./error.ts";
import { HANDSHAKE_SIZE, serverHandshake } from "./handshake.ts";
import { MessageType, type RtmpMessage } from "./message.ts";
import { metadataFromStream, readStreamMetadata } from "./_metadata.ts";
import { RtmpMediaReader } from "./_media.ts";

/** Settings shared by every session of one server. */
export interface SessionSettings {
  readonly registry: Registry;
  readonly logger: Logger;
  readonly handshakeTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly commandTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxBufferedBytes: number;
  readonly chunkSize: number;
  readonly windowAckSize: number;
  readonly maxMessageLength: number;
  readonly maxLag: number;
  readonly coalesceMs: number;
  readonly transcode: TranscodedViews | undefined;
}

/** How long a play waits for its transcoded view's first AAC config, at most. */
const TRANSCODE_CONFIG_WAIT_MS = 3000;

/** Chunk stream ids the server writes on. */
const CSID_COMMAND = 3;
const CSID_AUDIO = 4;
const CSID_STREAM = 5;
const CSID_VIDEO = 6;

/**
 * Until `connect` succeeds a peer may hold at most this many bytes of incomplete
 * messages (a `connect` command is a few hundred bytes).
 */
const PRE_CONNECT_MAX_BUFFERED_BYTES = 64 * 1024;

/** Codecs (E-RTMP FourCC) the server can carry, announced when a client lists its own. */
const FOURCCS = ["avc1", "hvc1", "av01"];

/** Commands answered with an empty `_result` and otherwise ignored. */
const HARMLESS = new Set([
  "getStreamLength",
  "_checkbw",
  "checkBandwidth",
  "FCSubscribe",
  "FCUnsubscribe",
  "receiveAudio",
  "receiveVideo",
  "pause",
  "seek",
  "setBufferLength",
]);

interface Publishing {
  readonly handle: StreamHandle;
  readonly streamId: number;
  /** Frames of the stream's media messages, in the kernel's contract. */
  readonly media: RtmpMediaReader;
}

interface Playing {
  readonly handle: StreamHandle;
  /** The transcoded view played instead of the stream, if one is. */
  readonly lease: TranscodedLease | undefined;
  readonly streamId: number;
  /** Aborted when the play stops (closeStream, deleteStream, the connection closing). */
  readonly stop: AbortController;
}

/**
 * Read buffer sizes: every connection starts small (players and handshakes send little, and
 * a server holds thousands of them); a publisher's grows to the large one.
 */
const SMALL_READ = 4 * 1024;
const PUBLISH_READ = 64 * 1024;
/**
 * A player's read buffer once it plays: it sends acknowledgements (16 bytes), ping answers
 * and a few short commands. A read that fills it is followed by one of {@linkcode SMALL_READ}
 * bytes, made for that read only, so a burst is not read 64 bytes at a time.
 */
const PLAYER_READ = 64;
/**
 * What a playing connection may hold of incomplete messages: a player has nothing large to
 * send, so one that announces a big message and sends it is held to what a `connect` may.
 */
const PLAYER_MAX_BUFFERED_BYTES = PRE_CONNECT_MAX_BUFFERED_BYTES;

/**
 * Queued messages are joined into one write up to this many bytes; a message that does not
 * fit with the next goes out alone, uncopied.
 */
const COALESCE_LIMIT = 8 * 1024;

type Phase = "c0c1" | "c2" | "chunks";

/**
 * The server side of one RTMP connection. {@linkcode RtmpSession.run} reads until
 * the peer leaves or an error closes the connection; {@linkcode RtmpSession.close}
 * ends it from outside (shutdown, timeouts).
 */
export class RtmpSession {
  /** `host:port` of the peer. */
  readonly peer: string;
  #conn: Deno.Conn;
  #settings: SessionSettings;
  #log: Logger;
  #phase: Phase = "c0c1";
  /** C0 and C1 as they arrive; dropped once answered. */
  #handshake: Uint8Array | undefined = new Uint8Array(1 + HANDSHAKE_SIZE);
  #handshakeFilled = 0;
  #reader: ChunkReader;
  #writer = new ChunkWriter();
  /** What reads go into: small until the connection publishes, smaller once it plays. */
  #readBuffer = new Uint8Array(SMALL_READ);
  /** The buffer of the read in flight. */
  #reading: Uint8Array = this.#readBuffer;
  /** Settles {@linkcode RtmpSession.run}'s promise once the connection has ended. */
  #ended: () => void = () => {};
  /** Bytes waiting for the write in flight to finish. */
  #outbox: Uint8Array[] = [];
  /** The bytes of the write in flight, while one is. */
  #writing: Uint8Array | undefined;
  /** Resolved once nothing is left to write, for those waiting on it; made when one waits. */
  #drained: PromiseWithResolvers<void> | undefined;
  #peerWindow: number;
  #lastAck = 0;
  /** When the current wait on the peer began: the handshake, `connect`, or a publish or play. */
  #waitingSince = performance.now();
  /** When the publisher last sent a complete message on its stream. */
  #lastMedia = 0;
  /**
   * While a write is in flight (`#writing`): when the last write finished, or, from idle, when
   * the first was started; the player stall check compares it with the idle timeout.
   */
  #lastWrite = 0;
  #closed = false;
  #app: string | undefined;
  #appQuery = "";
  #nextStreamId = 1;
  #publishing: Publishing | undefined;
  #playing: Playing | undefined;

  /** Wrap an accepted connection. */
  constructor(conn: Deno.Conn, settings: SessionSettings) {
    this.#conn = conn;
    this.#settings = settings;
    this.#log = settings.logger;
    const addr = conn.remoteAddr as Deno.NetAddr;
    this.peer = `${addr.hostname}:${addr.port}`;
    this.#reader = new ChunkReader({
      maxMessageLength: settings.maxMessageLength,
      maxBufferedBytes: Math.min(PRE_CONNECT_MAX_BUFFERED_BYTES, settings.maxBufferedBytes),
    });
    this.#peerWindow = settings.windowAckSize;
  }

  /**
   * Serve the connection until it ends; never rejects. Reads chain one to the next without
   * an async function suspended per connection (thousands of players mostly wait).
   */
  run(): Promise<void> {
    const ended = Promise.withResolvers<void>();
    this.#ended = ended.resolve;
    this.#read();
    return ended.promise;
  }

  /**
   * Read once into `buf`; what arrives is handled, then the next read starts (until the
   * close).
   */
  #read(buf = this.#readBuffer): void {
    if (this.#closed) return this.#ended();
    this.#reading = buf;
    this.#conn.read(buf).then(this.#onRead, this.#onReadFailed);
  }

  #onRead = (n: number | null): void => {
    if (n === null) return this.#end("peer closed the connection", "info");
    const buf = this.#reading;
    // A read that filled a player's small buffer leaves more waiting: the next one is larger.
    const burst = n === PLAYER_READ && buf.length === PLAYER_READ
      ? new Uint8Array(SMALL_READ)
      : undefined;
    let pending: Promise<void> | void;
    try {
      pending = this.#receive(buf.subarray(0, n));
    } catch (error) {
      return this.#onBadInput(error);
    }
    if (pending) pending.then(() => this.#read(burst), this.#onBadInput);
    else this.#read(burst);
  };

  #onReadFailed = (error: unknown): void => this.#end(`read failed: ${reason(error)}`, "info");

  /** Bad input (ours or a media parser's RangeError) is the peer's fault; anything else is a bug. */
  #onBadInput = (error: unknown): void => {
    const bad = error instanceof RtmpError || error instanceof RangeError;
    this.#end(reason(error), bad ? "warn" : "error");
  };

  /** Close and settle {@linkcode RtmpSession.run}. */
  #end(why: string, level: "info" | "warn" | "error"): void {
    this.close(why, level);
    this.#ended();
  }

  /**
   * Close once for a timeout the server's sweep found. Each state that waits on the peer
   * has its own deadline, and stray bytes or control messages never extend one: the
   * handshake, then `connect`, then a publish or play command; a publisher must keep
   * sending messages on its stream, and a player must keep taking the bytes written to it.
   */
  checkTimeouts(now: number): void {
    const s = this.#settings;
    if (this.#phase !== "chunks") {
      if (now - this.#waitingSince > s.handshakeTimeoutMs) {
        this.close(`handshake not completed within ${s.handshakeTimeoutMs} ms`);
      }
    } else if (this.#app === undefined) {
      if (now - this.#waitingSince > s.connectTimeoutMs) {
        this.close(`no connect within ${s.connectTimeoutMs} ms of the handshake`);
      }
    } else if (this.#publishing) {
      if (now - this.#lastMedia > s.idleTimeoutMs) {
        this.close(`publisher sent no message on its stream for ${s.idleTimeoutMs} ms`);
      }
    } else if (this.#playing) {
      if (this.#writing !== undefined && now - this.#lastWrite > s.idleTimeoutMs) {
        this.close(`player took no bytes for ${s.idleTimeoutMs} ms`);
      }
    } else if (now - this.#waitingSince > s.commandTimeoutMs) {
      this.close(`no publish or play within ${s.commandTimeoutMs} ms of connect`);
    }
  }

  /** End the connection (idempotent): its publish ends, its play stops, the socket closes. */
  close(why: string, level: "info" | "warn" | "error" = "warn"): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#log[level](`rtmp ${this.peer}: closed: ${why}`);
    this.#endPublish("closed");
    this.#stopPlay();
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
    // Nothing more will be written: those waiting for the queue to drain go on.
    this.#outbox.length = 0;
    this.#drain();
  }

  /** Handle what the peer sent; a promise when a command's answer waits (authorize, acquire). */
  #receive(bytes: Uint8Array): Promise<void> | void {
    let data = bytes;
    if (this.#phase === "c0c1") {
      const c0c1 = this.#handshake!;
      const n = Math.min(data.length, c0c1.length - this.#handshakeFilled);
      c0c1.set(data.subarray(0, n), this.#handshakeFilled);
      this.#handshakeFilled += n;
      data = data.subarray(n);
      if (this.#handshakeFilled < c0c1.length) return;
      this.#sendBytes(serverHandshake(c0c1));
      this.#handshake = undefined;
      this.#phase = "c2";
      this.#handshakeFilled = 0;
    }
    if (this.#phase === "c2") {
      const n = Math.min(data.length, HANDSHAKE_SIZE - this.#handshakeFilled);
      this.#handshakeFilled += n;
      data = data.subarray(n);
      if (this.#handshakeFilled < HANDSHAKE_SIZE) return;
      this.#phase = "chunks";
      this.#waitingSince = performance.now();
    }
    if (data.length === 0) return;
    return this.#handleFrom(this.#reader.push(data), 0);
  }

  /** Handle `messages` from index `at` on, each after the one before has been answered. */
  #handleFrom(messages: RtmpMessage[], at: number): Promise<void> | void {
    for (let i = at; i < messages.length; i++) {
      const pending = this.#handle(messages[i]);
      if (pending) {
        return pending.then(() => this.#closed ? undefined : this.#handleFrom(messages, i + 1));
      }
      if (this.#closed) return;
    }
    const received = this.#reader.bytesReceived;
    if (received - this.#lastAck >= this.#peerWindow) {
      this.#lastAck = received;
      this.#send(acknowledgementMessage(received));
    }
  }

  #handle(msg: RtmpMessage): Promise<void> | void {
    if (msg.streamId === this.#publishing?.streamId) this.#lastMedia = performance.now();
    switch (msg.typeId) {
      case MessageType.AUDIO:
      case MessageType.VIDEO:
      case MessageType.AGGREGATE:
        if (msg.streamId === this.#publishing?.streamId) this.#publishing.media.take(msg);
        return;
      case MessageType.DATA_AMF0:
        return this.#onData(msg);
      case MessageType.COMMAND_AMF0:
        return this.#onCommand(msg.streamId, parseCommand(msg.payload));
      case MessageType.COMMAND_AMF3:
      case MessageType.SHARED_OBJECT_AMF3:
        throw new RtmpError(`AMF3-encoded messages (type ${msg.typeId}) are not supported`);
      case MessageType.USER_CONTROL: {
        const event = parseUserControl(msg.payload);
        if (event.event === UserControlEvent.PING_REQUEST) {
          this.#send(userControlMessage(UserControlEvent.PING_RESPONSE, event.value));
        }
        return;
      }
      case MessageType.WINDOW_ACK_SIZE: {
        const size = readControlValue(msg.payload, "Window Acknowledgement Size");
        if (size > 0) this.#peerWindow = size;
        return;
      }
      default:
        // Acknowledgement, Set Peer Bandwidth, AMF3 data, shared objects: nothing to do.
        return;
    }
  }

  // ---- commands ----

  #onCommand(streamId: number, cmd: Command): Promise<void> | void {
    if (cmd.name !== "connect" && this.#app === undefined) {
      throw new RtmpError(`command ${escapeForLog(cmd.name)} before connect`);
    }
    switch (cmd.name) {
      case "connect":
        return this.#connect(cmd);
      case "createStream":
        this.#result(cmd, null, this.#nextStreamId++);
        return;
      case "releaseStream":
        this.#result(cmd, null);
        return;
      case "FCPublish":
        this.#send(
          commandMessage(CSID_COMMAND, 0, "onFCPublish", 0, null, {
            code: "NetStream.Publish.Start",
            description: String(cmd.args[0] ?? ""),
          }),
        );
        this.#result(cmd, null);
        return;
      case "publish":
        return this.#publish(streamId, cmd);
      case "play":
        return this.#play(streamId, cmd);
      case "FCUnpublish":
        this.#result(cmd, null);
        this.#endPublish("FCUnpublish");
        return;
      case "deleteStream":
        this.#closeStream(Number(cmd.args[0]));
        return;
      case "closeStream":
        this.#closeStream(streamId);
        return;
      case "_result":
      case "_error":
      case "onStatus":
        return;
      default:
        if (HARMLESS.has(cmd.name)) {
          this.#result(cmd, null, cmd.name === "getStreamLength" ? 0 : undefined);
        } else if (cmd.transactionId > 0) {
          this.#send(
            commandMessage(CSID_COMMAND, 0, "_error", cmd.transactionId, null, {
              level: "error",
              code: "NetConnection.Call.Failed",
              description: `unknown command ${cmd.name}`,
            }),
          );
        }
    }
  }

  #connect(cmd: Command): void {
    if (this.#app !== undefined) throw new RtmpError("second connect on one connection");
    const info = (cmd.object ?? {}) as Amf0Object;
    const [app, query] = splitQuery(String(info.app ?? "").replace(/\/+$/, ""));
    if (!this.#settings.registry.apps.includes(app)) {
      this.#send(
        commandMessage(CSID_COMMAND, 0, "_error", cmd.transactionId, null, {
          level: "error",
          code: "NetConnection.Connect.Rejected",
          description: `unknown app ${JSON.stringify(app)}`,
        }),
      );
      this.#closeAfterWrites(`connect to unknown app ${JSON.stringify(app)}`);
      return;
    }
    this.#app = app;
    this.#appQuery = query;
    this.#reader.maxBufferedBytes = this.#settings.maxBufferedBytes;
    this.#waitingSince = performance.now();
    this.#log.info(`rtmp ${this.peer}: connect app=${app}`);
    this.#send(windowAckSizeMessage(this.#settings.windowAckSize));
    this.#send(setPeerBandwidthMessage(this.#settings.windowAckSize, 2));
    this.#send(setChunkSizeMessage(this.#settings.chunkSize));
    this.#writer.chunkSize = this.#settings.chunkSize;
    const properties: Amf0Object = { fmsVer: "FMS/3,5,7,7009", capabilities: 31 };
    if (Array.isArray(info.fourCcList)) {
      properties.fourCcList = FOURCCS.filter((c) => (info.fourCcList as Amf0Value[]).includes(c));
    }
    this.#result(cmd, properties, {
      level: "status",
      code: "NetConnection.Connect.Success",
      description: "Connection succeeded.",
      objectEncoding: 0,
    });
  }

  async #publish(streamId: number, cmd: Command): Promise<void> {
    const { stream, key, allowed } = await this.#request(cmd, "publish");
    if (this.#closed) return;
    const refuse = (code: string, why: string) => {
      this.#status(streamId, "error", code, why, stream);
      this.#closeAfterWrites(`publish ${key} refused: ${why}`);
    };
    if (!stream) return refuse("NetStream.Publish.BadName", "empty stream name");
    if (!allowed) return refuse("NetStream.Publish.Denied", "not authorized");
    let handle: StreamHandle;
    try {
      handle = this.#settings.registry.startPublish(this.#app!, stream, {
        protocol: "rtmp",
        peer: this.peer,
      });
    } catch (error) {
      if (!(error instanceof PublishError)) throw error;
      return refuse("NetStream.Publish.BadName", error.message);
    }
    this.#readBuffer = new Uint8Array(PUBLISH_READ);
    // After a play on this connection stopped, its small cap is lifted again.
    this.#reader.maxBufferedBytes = this.#settings.maxBufferedBytes;
    this.#publishing = {
      handle,
      streamId,
      media: new RtmpMediaReader((frame) => handle.publish(frame)),
    };
    this.#lastMedia = performance.now();
    handle.signal.addEventListener("abort", () => {
      if (this.#publishing?.handle === handle) this.close(`stream ${key} was ended by the server`);
    }, { once: true });
    this.#log.info(`rtmp ${this.peer}: publish ${key}`);
    this.#send(userControlMessage(UserControlEvent.STREAM_BEGIN, streamId));
    this.#status(streamId, "status", "NetStream.Publish.Start", `${key} is now published`, stream);
  }

  async #play(streamId: number, cmd: Command): Promise<void> {
    const { stream, key, allowed } = await this.#request(cmd, "read");
    if (this.#closed) return;
    if (stream && !allowed) {
      this.#status(streamId, "error", "NetStream.Play.Failed", "not authorized", stream);
      return this.#closeAfterWrites(`play ${key} refused: not authorized`);
    }
    const source = await this.#settings.registry.acquire(this.#app!, stream);
    if (this.#closed) return;
    if (!source || source.closed) {
      this.#status(streamId, "error", "NetStream.Play.StreamNotFound", `${key} not found`, stream);
      return this.#closeAfterWrites(`play ${key}: stream not found`);
    }
    // An Opus stream plays from its AAC view, once that has its config.
    const lease = await this.#settings.transcode?.acquireWhenNeeded(source, "aac");
    if (lease) await audioConfigOf(lease.handle, TRANSCODE_CONFIG_WAIT_MS);
    if (this.#closed) return lease?.release();
    const handle = lease?.handle ?? source;
    this.#log.info(`rtmp ${this.peer}: play ${key}${lease ? " (Opus sent as AAC)" : ""}`);
    this.#send(userControlMessage(UserControlEvent.STREAM_BEGIN, streamId));
    this.#status(
      streamId,
      "status",
      "NetStream.Play.Reset",
      `playing and resetting ${key}`,
      stream,
    );
    this.#status(streamId, "status", "NetStream.Play.Start", `started playing ${key}`, stream);
    this.#send(dataMessage(CSID_STREAM, streamId, "|RtmpSampleAccess", true, true));
    this.#send(dataMessage(CSID_STREAM, streamId, "onMetaData", metadataFromStream(handle)));
    const playing: Playing = { handle, lease, streamId, stop: new AbortController() };
    this.#playing = playing;
    // A player has nothing large to send: it is held to a small read buffer and a small cap.
    this.#reader.maxBufferedBytes = Math.min(
      PLAYER_MAX_BUFFERED_BYTES,
      this.#reader.maxBufferedBytes,
    );
    this.#startPlay(playing, key);
  }

  /**
   * Send the replay buffer then live frames until the stream ends or the play stops; then
   * {@linkcode RtmpSession.#played}.
   */
  #startPlay(playing: Playing, key: string): void {
    const { handle, streamId } = playing;
    const chunkSize = this.#writer.chunkSize;
    // Every player of this stream with this chunk size and stream id sends the same bytes.
    const shared = handle.derive(`rtmp/${chunkSize}/${streamId}`, () => {
      const writer = new ChunkWriter();
      writer.chunkSize = chunkSize;
      return new EncodedFrames((frame) => writer.encode(mediaMessage(frame, streamId), false));
    });
    const messages = shared.value;
    /** Configs replayed before the first media frame take that frame's timestamp. */
    let held: MediaFrame[] | undefined = [];
    const sink: PlaySink = {
      write: (frames, count) => {
        if (held === undefined) {
          // Players woken together get the same batch: its bytes are joined once per stream.
          return this.#sendBytes(messages.concat(frames, count));
        }
        let first = 0;
        while (first < count && frames[first].flags & FrameFlags.CONFIG) held.push(frames[first++]);
        if (first === count) return;
        for (const config of held) {
          this.#sendBytes(
            this.#writer.encode(mediaMessage(config, streamId, frames[first].dts), false),
          );
        }
        held = undefined;
        // A player only reads what it sends, so it needs no more than a small read buffer now.
        if (this.#readBuffer.length > PLAYER_READ) this.#readBuffer = new Uint8Array(PLAYER_READ);
        const media = first === 0 ? frames : frames.slice(first, count);
        return this.#sendBytes(messages.concat(media, count - first));
      },
    };
    handle.play(sink, {
      maxLag: this.#settings.maxLag,
      coalesceMs: this.#settings.coalesceMs,
      signal: playing.stop.signal,
    }).then((result) => {
      shared.release();
      this.#played(playing, key, result);
    });
  }

  /** A play ended: close the connection, or tell the player that the stream did. */
  #played(playing: Playing, key: string, { end, error }: PlayResult): void {
    const { handle, streamId } = playing;
    playing.lease?.release();
    if (end === "aborted" || this.#playing !== playing) return;
    this.#playing = undefined;
    if (end === "failed") return this.close(`playing ${key}: ${reason(error)}`, "error");
    if (end === "evicted") {
      return this.close(`player of ${key} fell too far behind and was evicted`);
    }
    // A player whose socket does not drain is closed by checkTimeouts (no stallTimeoutMs here).
    this.#send(userControlMessage(UserControlEvent.STREAM_EOF, streamId));
    this.#status(
      streamId,
      "status",
      "NetStream.Play.UnpublishNotify",
      `${key} is no longer published`,
      handle.stream,
    );
    this.#closeAfterWrites(`stream ${key} ended`, "info");
  }

  #closeStream(streamId: number): void {
    if (this.#publishing?.streamId === streamId) this.#endPublish("deleteStream");
    if (this.#playing?.streamId === streamId) this.#stopPlay();
  }

  #endPublish(why: string): void {
    const publishing = this.#publishing;
    if (!publishing) return;
    this.#publishing = undefined;
    this.#waitingSince = performance.now();
    this.#settings.registry.endPublish(publishing.handle, "ended");
    this.#log.info(`rtmp ${this.peer}: unpublish ${publishing.handle.key} (${why})`);
  }

  #stopPlay(): void {
    const playing = this.#playing;
    if (!playing) return;
    this.#playing = undefined;
    this.#waitingSince = performance.now();
    playing.stop.abort();
  }

  /**
   * The stream a publish or play command names, its key as messages show it (escaped),
   * and whether the registry's authorize hook lets this peer have it (never asked for an
   * empty name). The query string is the stream name's, else the one that came with the
   * app in `connect`.
   */
  async #request(
    cmd: Command,
    action: "publish" | "read",
  ): Promise<{ stream: string; key: string; allowed: boolean }> {
    const raw = cmd.args[0];
    if (typeof raw !== "string") {
      throw new RtmpError(`${escapeForLog(cmd.name)} without a stream name`);
    }
    const [stream, query] = splitQuery(raw);
    const app = this.#app!;
    const key = escapeForLog(`${app}/${stream}`);
    if (this.#publishing || this.#playing) {
      throw new RtmpError(
        `${escapeForLog(cmd.name)} ${key} on a connection that already publishes or plays`,
      );
    }
    const allowed = stream !== "" && await this.#settings.registry.authorize({
      action,
      app,
      stream,
      query: query || this.#appQuery,
      protocol: "rtmp",
      peer: this.peer,
    });
    return { stream, key, allowed };
  }

  // ---- media and data ----

  #onData(msg: RtmpMessage): void {
    const publishing = this.#publishing;
    if (!publishing || msg.streamId !== publishing.streamId) return;
    const values = parseData(msg.payload);
    const at = values[0] === "@setDataFrame" ? 1 : 0;
    if (values[at] === "onMetaData") readStreamMetadata(publishing.handle, values[at + 1]);
  }

  // ---- writing ----

  #send(msg: RtmpMessage): void {
    this.#sendBytes(this.#writer.encode(msg));
  }

  #result(cmd: Command, object: Amf0Value, ...args: Amf0Value[]): void {
    if (cmd.transactionId === 0) return;
    this.#send(commandMessage(CSID_COMMAND, 0, "_result", cmd.transactionId, object, ...args));
  }

  #status(streamId: number, level: string, code: string, description: string, details: string) {
    this.#send(
      commandMessage(
        CSID_STREAM,
        streamId,
        "onStatus",
        0,
        null,
        statusInfo(level, code, description, details),
      ),
    );
  }

  /**
   * Write `bytes` at once when no write is in flight, else queue them behind it: everything
   * queued meanwhile goes out in the next single write. Returns the write's own promise when
   * it started one (settling once the socket took them, or failed), else a promise resolved
   * once the queue has drained or the connection closed; neither is needed by most callers.
   */
  #sendBytes(bytes: Uint8Array): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#writing !== undefined) {
      this.#outbox.push(bytes);
      return this.#whenDrained();
    }
    this.#lastWrite = performance.now();
    // What the write resolves with (the bytes the socket took) is for `#onWritten` alone.
    return this.#write(bytes) as Promise<unknown> as Promise<void>;
  }

  /** Start writing `bytes` (no other write is in flight). */
  #write(bytes: Uint8Array): Promise<number> {
    this.#writing = bytes;
    const written = this.#conn.write(bytes);
    written.then(this.#onWritten, this.#onWriteFailed);
    return written;
  }

  /**
   * The write in flight took `n` bytes: write the rest, then what was queued meanwhile (the
   * clock is read only then: once idle, the next write's start sets `#lastWrite`).
   */
  #onWritten = (n: number): void => {
    if (this.#closed) return;
    const bytes = this.#writing!;
    if (n < bytes.length) this.#write(bytes.subarray(n));
    else if (this.#outbox.length > 0) this.#write(this.#takeOutbox());
    else return this.#drain();
    this.#lastWrite = performance.now();
  };

  #onWriteFailed = (error: unknown): void => {
    this.close(`write failed: ${reason(error)}`, "info");
  };

  /** Nothing is left to write (or nothing will be): settle who waits on that. */
  #drain(): void {
    this.#writing = undefined;
    const drained = this.#drained;
    this.#drained = undefined;
    drained?.resolve();
  }

  /** Resolves once the queue has drained (at once when nothing is being written). */
  #whenDrained(): Promise<void> {
    if (this.#writing === undefined) return Promise.resolve();
    this.#drained ??= Promise.withResolvers();
    return this.#drained.promise;
  }

  /**
   * The next bytes to write: as many queued entries as fit in {@linkcode COALESCE_LIMIT},
   * joined, or the first entry alone (uncopied) when it fills that by itself. Queues form
   * only while a write is in flight (commands, acknowledgements), so the join is made for
   * the write rather than kept per session.
   */
  #takeOutbox(): Uint8Array {
    const outbox = this.#outbox;
    const first = outbox[0];
    if (outbox.length === 1 || first.length + outbox[1].length > COALESCE_LIMIT) {
      outbox.shift();
      return first;
    }
    let total = 0;
    let taken = 0;
    for (; taken < outbox.length && total + outbox[taken].length <= COALESCE_LIMIT; taken++) {
      total += outbox[taken].length;
    }
    const joined = new Uint8Array(total);
    for (let i = 0, o = 0; i < taken; i++) {
      joined.set(outbox[i], o);
      o += outbox[i].length;
    }
    outbox.splice(0, taken);
    return joined;
  }

  #closeAfterWrites(why: string, level: "info" | "warn" = "warn"): void {
    void this.#whenDrained().then(() => this.close(why, level));
  }
}

/** The RTMP message of a media frame at decode time `dts` (90 kHz). */
function mediaMessage(frame: MediaFrame, streamId: number, dts = frame.dts): RtmpMessage {
  const video = frame.kind === "video";
  return {
    csid: video ? CSID_VIDEO : CSID_AUDIO,
    typeId: video ? MessageType.VIDEO : MessageType.AUDIO,
    streamId,
    timestamp: toRtmpTime(dts),
    payload: video ? encodeVideoTag(frame) : encodeAudioTag(frame),
  };
}

/** `name?query` → `[name, query]`. */
function splitQuery(text: string): [string, string] {
  const q = text.indexOf("?");
  return q < 0 ? [text, ""] : [text.slice(0, q), text.slice(q + 1)];
}

/** A kernel time (90 kHz) as a wrapped 32-bit RTMP millisecond timestamp. */
function toRtmpTime(ticks: number): number {
  const ms = Math.round(ticks / 90) % 0x1_0000_0000;
  return ms < 0 ? ms + 0x1_0000_0000 : ms;
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
