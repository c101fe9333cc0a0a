/**
 * The client side of one RTMP connection, shared by the publisher and the pull client: TCP or
 * TLS connect, the plain handshake, `connect`, then commands and their answers, with
 * acknowledgements and ping responses done here and every other message handed on.
 *
 * @module
 */

import type { Amf0Object, Amf0Value } from "../../media/flv/amf0.ts";
import { ChunkReader, ChunkWriter, readControlValue } from "./chunk.ts";
import { type Command, commandMessage, parseCommand } from "./command.ts";
import {
  acknowledgementMessage,
  parseUserControl,
  setChunkSizeMessage,
  type UserControl,
  UserControlEvent,
  userControlMessage,
} from "./control.ts";
import { RtmpError } from "./error.ts";
import { HANDSHAKE_SIZE, RTMP_VERSION } from "./handshake.ts";
import { MessageType, type RtmpMessage } from "./message.ts";
import type { RtmpUrl } from "./client.ts";

/** How a {@linkcode RtmpClientConnection} is opened. */
export interface ClientConnectionOptions {
  /** Deadline of each step: TCP and TLS connect, handshake, each answer awaited. */
  timeoutMs: number;
  /** The chunk size this side writes with. */
  chunkSize: number;
  /** Properties of the `connect` command object besides `app` and `tcUrl`. */
  connectProperties: Amf0Object;
  /** Trust anchors (PEM) for `rtmps://` besides the system's. */
  caCerts?: string[];
  /** Aborts the set-up and ends the connection. */
  signal?: AbortSignal;
  /** Every message that is not a command or protocol control (audio, video, data, ...). */
  onMessage?: (message: RtmpMessage) => void;
  /** Every user control event but pings (which are answered): stream begin and end, ... */
  onUserControl?: (event: UserControl) => void;
}

/** How a connection ended. */
export interface ConnectionEnd {
  /** Why, for a log line or an error. */
  readonly reason: string;
  /** `peer`: the server closed the socket; `local`: {@linkcode RtmpClientConnection.end}; `failed`: a read, write or parse failed. */
  readonly by: "peer" | "local" | "failed";
}

/** The chunk stream commands go out on. */
const COMMAND_CSID = 3;

/** Commands kept for the set-up's waits, at most; older ones are dropped. */
const MAX_QUEUED_COMMANDS = 16;

/**
 * One client connection, from {@linkcode RtmpClientConnection.open} (which resolves once the
 * server accepted `connect`) until {@linkcode RtmpClientConnection.ended} resolves.
 */
export class RtmpClientConnection {
  readonly #conn: Deno.Conn;
  readonly #timeoutMs: number;
  readonly #onMessage: ((message: RtmpMessage) => void) | undefined;
  readonly #onUserControl: ((event: UserControl) => void) | undefined;
  readonly #writer = new ChunkWriter();
  readonly #reader = new ChunkReader();
  readonly #commands: Command[] = [];
  #onCommand: ((command: Command) => void) | undefined;
  readonly #ended = Promise.withResolvers<ConnectionEnd>();
  #wake: (() => void) | undefined;
  #end: ConnectionEnd | undefined;
  #window = 2_500_000;
  #acknowledged = 0;

  private constructor(conn: Deno.Conn, options: ClientConnectionOptions) {
    this.#conn = conn;
    this.#timeoutMs = options.timeoutMs;
    this.#onMessage = options.onMessage;
    this.#onUserControl = options.onUserControl;
  }

  /** Resolves once the connection has ended, with how. */
  get ended(): Promise<ConnectionEnd> {
    return this.#ended.promise;
  }

  /** Why the connection ended, once it has. */
  get endReason(): string | undefined {
    return this.#end?.reason;
  }

  /**
   * Connect to `target`, do the handshake and `connect`; rejects with an {@linkcode RtmpError}
   * saying which step failed (or an `AbortError` `DOMException` once `signal` aborted).
   */
  static async open(
    target: RtmpUrl,
    options: ClientConnectionOptions,
  ): Promise<RtmpClientConnection> {
    const { signal, timeoutMs } = options;
    signal?.throwIfAborted();
    const where = `${target.hostname}:${target.port}`;
    const connecting: Promise<Deno.TcpConn | Deno.TlsConn> = target.tls
      ? Deno.connectTls({ hostname: target.hostname, port: target.port, caCerts: options.caCerts })
      : Deno.connect({ hostname: target.hostname, port: target.port });
    const conn = await withDeadline(connecting, timeoutMs, `connect to ${where}`, signal)
      .catch((error) => {
        connecting.then((late) => late.close(), () => {});
        throw error;
      });
    if (signal?.aborted) {
      conn.close();
      signal.throwIfAborted();
    }
    const connection = new RtmpClientConnection(conn, options);
    const abort = () => connection.end("aborted");
    signal?.addEventListener("abort", abort, { once: true });
    void connection.ended.then(() => signal?.removeEventListener("abort", abort));
    try {
      if ("handshake" in conn) {
        await withDeadline(conn.handshake(), timeoutMs, `TLS with ${where}`);
      } else conn.setNoDelay(true);
      await connection.#handshake();
      void connection.#pump();
      await connection.send(setChunkSizeMessage(options.chunkSize));
      connection.#writer.chunkSize = options.chunkSize;
      await connection.command("connect", 1, 0, {
        app: target.app,
        tcUrl: target.tcUrl,
        ...options.connectProperties,
      });
      await connection.result(1, "connect");
    } catch (error) {
      connection.end(error instanceof Error ? error.message : String(error));
      signal?.throwIfAborted();
      throw error;
    }
    return connection;
  }

  /**
   * Hand the server's commands to `handler` from now on, those still queued first: the
   * set-up is over, nothing waits with {@linkcode RtmpClientConnection.next} any more.
   */
  handleCommands(handler: (command: Command) => void): void {
    this.#onCommand = handler;
    for (const command of this.#commands.splice(0)) {
      if (this.#end === undefined) handler(command);
    }
  }

  /** Send a command on message stream `streamId`. */
  command(
    name: string,
    transaction: number,
    streamId: number,
    object: Amf0Value,
    ...args: Amf0Value[]
  ): Promise<void> {
    return this.send(commandMessage(COMMAND_CSID, streamId, name, transaction, object, ...args));
  }

  /** The `_result` of `transaction`; an `_error` rejects with the server's code and description. */
  async result(transaction: number, what: string): Promise<Command> {
    const answer = await this.next(
      (c) => (c.name === "_result" || c.name === "_error") && c.transactionId === transaction,
      what,
    );
    if (answer.name === "_error") {
      const info = (answer.args[0] ?? {}) as Amf0Object;
      throw new RtmpError(`${what} refused: ${info.code ?? ""} ${info.description ?? ""}`.trim());
    }
    return answer;
  }

  /**
   * The first command from the server that `match`es, waiting up to the timeout; the
   * others wait in a queue (of at most 16, the oldest dropped) for a later match.
   */
  async next(match: (command: Command) => boolean, what: string): Promise<Command> {
    const deadline = performance.now() + this.#timeoutMs;
    for (;;) {
      const at = this.#commands.findIndex(match);
      if (at >= 0) return this.#commands.splice(at, 1)[0];
      if (this.#end !== undefined) throw new RtmpError(`${what}: ${this.#end.reason}`);
      const left = deadline - performance.now();
      if (left <= 0) throw new RtmpError(`${what}: no answer within ${this.#timeoutMs} ms`);
      const woken = new Promise<void>((resolve) => (this.#wake = resolve));
      await withDeadline(woken, left, what).catch(() => {});
    }
  }

  /** Send one message; rejects once the connection has ended. */
  send(message: RtmpMessage): Promise<void> {
    return this.#writeAll(this.#writer.encode(message));
  }

  /** End the connection (idempotent): the socket closes and waits reject. */
  end(reason: string, by: ConnectionEnd["by"] = "local"): void {
    if (this.#end !== undefined) return;
    this.#end = { reason, by };
    this.#wake?.();
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
    this.#ended.resolve(this.#end);
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

  /** Read what the server sends until the connection ends. */
  async #pump(): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await this.#conn.read(buffer);
        if (n === null) return this.end("the server closed the connection", "peer");
        for (const message of this.#reader.push(buffer.subarray(0, n))) {
          await this.#take(message);
          if (this.#end !== undefined) return;
        }
        const received = this.#reader.bytesReceived;
        if (received - this.#acknowledged >= this.#window) {
          this.#acknowledged = received;
          await this.send(acknowledgementMessage(received % 2 ** 32));
        }
      }
    } catch (error) {
      if (this.#end === undefined) {
        this.end(error instanceof Error ? error.message : String(error), "failed");
      }
    }
  }

  async #take(message: RtmpMessage): Promise<void> {
    switch (message.typeId) {
      case MessageType.COMMAND_AMF0:
        return this.#command(parseCommand(message.payload));
      case MessageType.COMMAND_AMF3:
        // An AMF3 command message is a format byte (0) and then AMF0 values.
        if (message.payload[0] !== 0) {
          throw new RtmpError("AMF3-encoded commands are not supported");
        }
        return this.#command(parseCommand(message.payload.subarray(1)));
      case MessageType.WINDOW_ACK_SIZE:
        this.#window = Math.max(
          1,
          readControlValue(message.payload, "Window Acknowledgement Size"),
        );
        return;
      case MessageType.USER_CONTROL: {
        const event = parseUserControl(message.payload);
        if (event.event === UserControlEvent.PING_REQUEST) {
          await this.send(userControlMessage(UserControlEvent.PING_RESPONSE, event.value));
        } else this.#onUserControl?.(event);
        return;
      }
      case MessageType.ACKNOWLEDGEMENT:
      case MessageType.SET_PEER_BANDWIDTH:
        return;
      default:
        this.#onMessage?.(message);
    }
  }

  #command(command: Command): void {
    if (this.#onCommand) return this.#onCommand(command);
    if (this.#commands.length === MAX_QUEUED_COMMANDS) this.#commands.shift();
    this.#commands.push(command);
    this.#wake?.();
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    if (this.#end !== undefined) throw new RtmpError(`connection ended: ${this.#end.reason}`);
    try {
      for (let at = 0; at < bytes.length;) at += await this.#conn.write(bytes.subarray(at));
    } catch (error) {
      this.end(`write failed: ${error instanceof Error ? error.message : error}`, "failed");
      throw new RtmpError(`connection ended: ${this.#end!.reason}`);
    }
  }
}

/**
 * Rejects after `ms` (with an {@linkcode RtmpError}) or when `signal` aborts (with its
 * reason) unless `promise` settles first.
 */
export function withDeadline<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
  signal?: AbortSignal,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RtmpError(`${what}: no answer within ${ms} ms`)), ms);
      onAbort = () => reject(signal!.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
  ]).finally(() => {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  });
}
