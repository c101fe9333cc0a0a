/** A minimal scripted RTMP client for server tests (real sockets, our chunk codec). */

import {
  ChunkReader,
  ChunkWriter,
  type Command,
  commandMessage,
  HANDSHAKE_SIZE,
  MessageType,
  parseCommand,
  type RtmpMessage,
} from "../../../ingest/rtmp/mod.ts";
import type { Amf0Object, Amf0Value } from "../../../media/flv/mod.ts";
import { concat } from "../../_util/bytes.ts";

/** One client connection: raw bytes, or chunked messages after {@linkcode TestClient.handshake}. */
export class TestClient {
  readonly conn: Deno.TcpConn;
  readonly reader = new ChunkReader();
  readonly writer = new ChunkWriter();
  readonly inbox: RtmpMessage[] = [];
  /** Resolves when the server closes the connection (or the socket fails). */
  readonly closed: Promise<void>;
  #raw: Uint8Array[] = [];
  #wake: (() => void) | undefined;
  #chunked = false;
  #done = false;
  #paused: PromiseWithResolvers<void> | undefined;

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
    this.closed = this.#readLoop();
  }

  static async open(port: number): Promise<TestClient> {
    return new TestClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  async #readLoop(): Promise<void> {
    const buf = new Uint8Array(65536);
    try {
      for (;;) {
        if (this.#paused) await this.#paused.promise;
        const n = await this.conn.read(buf);
        if (n === null) break;
        const bytes = buf.slice(0, n);
        if (this.#chunked) this.inbox.push(...this.reader.push(bytes));
        else this.#raw.push(bytes);
        this.#wake?.();
      }
    } catch {
      // closed
    } finally {
      this.#done = true;
      this.#wake?.();
    }
  }

  async #until(ready: () => boolean, ms: number, what: string): Promise<void> {
    const until = Date.now() + ms;
    while (!ready()) {
      if (this.#done) throw new Error(`connection closed while waiting for ${what}`);
      const left = until - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        setTimeout(resolve, Math.min(left, 50));
      });
    }
  }

  /** Stop reading the socket (the server's writes back up) until {@linkcode TestClient.resume}. */
  pause(): void {
    this.#paused ??= Promise.withResolvers();
  }

  resume(): void {
    this.#paused?.resolve();
    this.#paused = undefined;
  }

  async write(bytes: Uint8Array): Promise<void> {
    for (let o = 0; o < bytes.length;) o += await this.conn.write(bytes.subarray(o));
  }

  /** Simple handshake: C0+C1, read S0+S1+S2, send C2; then switch to chunked messages. */
  async handshake(c1: Uint8Array = new Uint8Array(HANDSHAKE_SIZE)): Promise<Uint8Array> {
    const c0c1 = new Uint8Array(1 + HANDSHAKE_SIZE);
    c0c1[0] = 3;
    c0c1.set(c1, 1);
    await this.write(c0c1);
    const want = 1 + 2 * HANDSHAKE_SIZE;
    await this.#until(() => this.#raw.reduce((n, b) => n + b.length, 0) >= want, 3000, "S0S1S2");
    const all = concat(this.#raw);
    this.#raw = [];
    await this.write(all.slice(1, 1 + HANDSHAKE_SIZE)); // C2 echoes S1
    this.#chunked = true;
    if (all.length > want) this.inbox.push(...this.reader.push(all.subarray(want)));
    return all.subarray(0, want);
  }

  send(msg: RtmpMessage, compress = true): Promise<void> {
    return this.write(this.writer.encode(msg, compress));
  }

  command(streamId: number, name: string, txn: number, object: Amf0Value, ...args: Amf0Value[]) {
    return this.send(commandMessage(3, streamId, name, txn, object, ...args));
  }

  /** The next message (removed from the inbox) matching `match`. */
  async next(
    match: (m: RtmpMessage) => boolean,
    ms = 3000,
    what = "a message",
  ): Promise<RtmpMessage> {
    let at = -1;
    await this.#until(() => (at = this.inbox.findIndex(match)) >= 0, ms, what);
    return this.inbox.splice(at, 1)[0];
  }

  /** The next command named one of `names`. */
  async nextCommand(names: string[], ms = 3000): Promise<Command> {
    const m = await this.next(
      (m) => m.typeId === MessageType.COMMAND_AMF0 && names.includes(parseCommand(m.payload).name),
      ms,
      `command ${names.join("/")}`,
    );
    return parseCommand(m.payload);
  }

  /** connect + createStream; returns the stream id. */
  async connect(app = "live", extra: Amf0Object = {}): Promise<number> {
    await this.command(0, "connect", 1, { app, tcUrl: `rtmp://127.0.0.1/${app}`, ...extra });
    const result = await this.nextCommand(["_result", "_error"]);
    if (result.name !== "_result") throw new Error(`connect failed: ${JSON.stringify(result)}`);
    await this.command(0, "createStream", 2, null);
    const created = await this.nextCommand(["_result"]);
    return created.args[0] as number;
  }

  /** publish and wait for the onStatus answer; returns its code. */
  async publish(streamId: number, name: string): Promise<string> {
    await this.command(streamId, "publish", 3, null, name, "live");
    return statusCode(await this.nextCommand(["onStatus"]));
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}

/** The `code` of an onStatus command. */
export function statusCode(cmd: Command): string {
  return String((cmd.args[0] as Amf0Object)?.code);
}
