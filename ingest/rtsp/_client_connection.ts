/**
 * The control connection of an RTSP client: requests out (each with its CSeq, session and
 * credentials), responses in and matched to them, interleaved frames to a handler, every
 * wait bounded.
 *
 * @module
 */

import { escapeForLog, type Logger } from "../../mod.ts";
import { RtspError, type RtspResponse, RtspResponseReader } from "./message.ts";
import { ClientAuth, type UserPassword } from "./_client_auth.ts";

/** How {@linkcode RtspClientConnection.open} connects. */
export interface ClientConnectionOptions {
  /** Deadline of the connect (and TLS handshake) and of each request, in ms. */
  readonly timeoutMs: number;
  /** Trust anchors (PEM) for `rtsps://`, besides the system's. */
  readonly caCerts?: string[];
  /** The URL's user and password, answered on a 401. */
  readonly credentials?: UserPassword;
  /** Receives interleaved frames; `data` is valid only during the call. */
  readonly onInterleaved: (channel: number, data: Uint8Array) => void;
  /** Where the answers to 401s are noted (never the credentials). */
  readonly logger: Logger;
}

/** An RTSP request that got an error status (the caller decides what it means). */
export class RtspStatusError extends Error {
  /** The status code. */
  readonly status: number;

  constructor(method: string, response: RtspResponse) {
    super(`${method} refused: ${response.status} ${escapeForLog(response.reason)}`);
    this.name = "RtspStatusError";
    this.status = response.status;
  }
}

interface Pending {
  readonly method: string;
  readonly resolve: (response: RtspResponse) => void;
  readonly reject: (error: Error) => void;
}

const USER_AGENT = "arcly-stream";
const encoder = new TextEncoder();

/** How many times one request is answered with 401 and sent again with new credentials. */
const MAX_AUTH_ROUNDS = 3;

/** One TCP (or TLS) connection to an RTSP server. */
export class RtspClientConnection {
  /** The server's IP address, where UDP media comes from. */
  readonly remoteAddress: string;
  /** The `Session` id once a SETUP answered with one. */
  session: string | undefined;
  /** The session timeout the server stated (default 60 s), in ms. */
  sessionTimeoutMs = 60_000;
  #conn: Deno.Conn;
  #options: ClientConnectionOptions;
  #reader: RtspResponseReader;
  #auth: ClientAuth | undefined;
  #cseq = 0;
  #pending = new Map<number, Pending>();
  #writes: Promise<void> = Promise.resolve();
  #closed = false;
  #ended = Promise.withResolvers<Error | undefined>();

  private constructor(conn: Deno.Conn, options: ClientConnectionOptions) {
    this.#conn = conn;
    this.#options = options;
    this.remoteAddress = (conn.remoteAddr as Deno.NetAddr).hostname;
    this.#reader = new RtspResponseReader(options.onInterleaved);
    this.#auth = options.credentials && new ClientAuth(options.credentials);
    void this.#read();
  }

  /** Connect to `url`'s host (TLS for `rtsps:`), within the timeout. */
  static async open(url: URL, options: ClientConnectionOptions): Promise<RtspClientConnection> {
    const tls = url.protocol === "rtsps:";
    const hostname = url.hostname.replace(/^\[|\]$/g, "");
    const port = url.port ? Number(url.port) : tls ? 322 : 554;
    const connecting: Promise<Deno.Conn> = tls
      ? Deno.connectTls({ hostname, port, caCerts: options.caCerts })
      : Deno.connect({ hostname, port });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        void connecting.then(closeQuietly, () => {});
        reject(
          new Error(`connect to ${hostname}:${port}: no answer within ${options.timeoutMs} ms`),
        );
      }, options.timeoutMs);
    });
    try {
      const conn = await Promise.race([connecting, late]);
      if (tls) await Promise.race([(conn as Deno.TlsConn).handshake(), late]);
      return new RtspClientConnection(conn, options);
    } catch (error) {
      void connecting.then(closeQuietly, () => {});
      throw error instanceof Error && error.message.startsWith("connect to")
        ? error
        : new Error(`connect to ${hostname}:${port}: ${(error as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves when the connection ends: with the reason, undefined for the server's close. */
  get ended(): Promise<Error | undefined> {
    return this.#ended.promise;
  }

  /**
   * Send a request and wait for its response (within the timeout), answering a 401 with
   * the URL's credentials. Rejects when the connection ends or the answer is late.
   */
  async request(
    method: string,
    uri: string,
    headers: readonly (readonly [string, string])[] = [],
  ): Promise<RtspResponse> {
    for (let round = 0;; round++) {
      const response = await this.#send(method, uri, headers);
      if (response.status !== 401 || !this.#auth || round === MAX_AUTH_ROUNDS) return response;
      const refused = this.#auth.accept(response.headers.get("www-authenticate"));
      if (refused) throw new Error(`${method} refused: 401 Unauthorized: ${refused}`);
      this.#options.logger.info(`rtsp pull: ${method} answered 401; sending ${this.#auth.scheme}`);
    }
  }

  /** Send one request and wait for its answer. */
  async #send(
    method: string,
    uri: string,
    headers: readonly (readonly [string, string])[],
  ): Promise<RtspResponse> {
    if (this.#closed) throw new Error(`${method}: the connection is closed`);
    const cseq = ++this.#cseq;
    let head = `${method} ${uri} RTSP/1.0\r\nCSeq: ${cseq}\r\nUser-Agent: ${USER_AGENT}\r\n`;
    if (this.session !== undefined) head += `Session: ${this.session}\r\n`;
    const authorization = this.#auth?.header(method, uri);
    if (authorization) head += `Authorization: ${authorization}\r\n`;
    for (const [name, value] of headers) head += `${name}: ${value.replace(/[\r\n]/g, " ")}\r\n`;
    const answered = new Promise<RtspResponse>((resolve, reject) => {
      this.#pending.set(cseq, { method, resolve, reject });
    });
    this.write(encoder.encode(`${head}\r\n`));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.#pending.delete(cseq);
        reject(new Error(`${method}: no answer within ${this.#options.timeoutMs} ms`));
      }, this.#options.timeoutMs);
    });
    try {
      return await Promise.race([answered, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Queue bytes (a request, an interleaved RTCP packet); a failed write ends the connection. */
  write(bytes: Uint8Array): Promise<void> {
    this.#writes = this.#writes.then(async () => {
      if (this.#closed) return;
      try {
        for (let at = 0; at < bytes.length;) at += await this.#conn.write(bytes.subarray(at));
      } catch (error) {
        this.#end(new Error(`write failed: ${(error as Error).message}`));
      }
    });
    return this.#writes;
  }

  /** Close the connection (idempotent); pending requests reject. */
  close(): void {
    this.#end(new Error("closed"));
  }

  async #read(): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await this.#conn.read(buf);
        if (n === null) return this.#end(undefined);
        for (const response of this.#reader.push(buf.subarray(0, n))) this.#answer(response);
      }
    } catch (error) {
      const why = error instanceof RtspError
        ? `bad data from the server: ${error.message}`
        : (error as Error).message;
      this.#end(new Error(why));
    }
  }

  #answer(response: RtspResponse): void {
    const text = response.headers.get("cseq")?.trim();
    // A response without CSeq (some cameras) answers the oldest request still waiting.
    const cseq = text !== undefined && /^\d{1,10}$/.test(text)
      ? Number(text)
      : this.#pending.keys().next().value;
    const pending = cseq === undefined ? undefined : this.#pending.get(cseq);
    if (!pending) return;
    this.#pending.delete(cseq!);
    const session = response.headers.get("session");
    if (session && response.status < 300) this.#takeSession(session);
    pending.resolve(response);
  }

  #takeSession(value: string): void {
    const [id, ...params] = value.split(";");
    this.session = id.trim().slice(0, 256);
    for (const param of params) {
      const m = /^\s*timeout\s*=\s*(\d{1,6})\s*$/i.exec(param);
      if (m && Number(m[1]) > 0) this.sessionTimeoutMs = Number(m[1]) * 1000;
    }
  }

  #end(why: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    closeQuietly(this.#conn);
    const error = why ?? new Error("the server closed the connection");
    for (const pending of this.#pending.values()) {
      pending.reject(new Error(`${pending.method}: ${error.message}`));
    }
    this.#pending.clear();
    this.#ended.resolve(why);
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
