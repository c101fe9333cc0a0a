/**
 * The guard in front of the HTTP server: it accepts TCP connections itself, enforces what
 * `Deno.serve` does not (a deadline for each request head, an idle timeout between
 * requests, a connection limit per client address) and relays bytes to `Deno.serve`
 * listening on loopback, which does the HTTP.
 *
 * `Deno.serve` (hyper) has no head or idle deadline: a client dribbling a header byte
 * every few seconds, or saying nothing, holds a connection forever. The guard knows
 * where each connection is in its request cycle without parsing HTTP: every relay
 * connection to the inner server has its own loopback port, which the inner handler
 * sees as the peer port, so the handler tells the guard when a request starts and when
 * its response is done.
 *
 * Long-lived streaming responses (HTTP-FLV) do not go through the relay: the guard reads
 * the request line at the start of each request, and one that its `direct` test picks it
 * reads whole, hands to the routes in this process and writes the answer itself (a
 * `RawBody` straight to the client's socket), so a stream's bytes are written once, not
 * copied through `Deno.serve`'s body stream and a second socket.
 *
 * @module
 */

import { setTimeout as delay } from "node:timers/promises";
import type { Logger } from "../../mod.ts";
import {
  headEnd,
  lineEnd,
  MAX_HEAD,
  MAX_REQUEST_LINE,
  parseRequestHead,
  parseRequestLine,
  type RequestHead,
} from "./_request_head.ts";
import { type ResponseFraming, writeAll, writeResponse } from "./_write_response.ts";
import { joinBytes } from "./_bytes.ts";

/** The deadlines and limits the guard enforces. */
export interface GuardLimits {
  /**
   * A request head must be complete this long after its first byte (or the accept), and
   * its body this long after the head.
   */
  readonly requestTimeoutMs: number;
  /** A connection with no request in flight and no byte of a next one is closed after this. */
  readonly keepAliveTimeoutMs: number;
  /** Connections from one address beyond this are refused; 0 for no limit. */
  readonly maxConnectionsPerIp: number;
}

/** Bytes read at a time while a connection has not yet carried much. */
const FIRST_READ_BYTES = 2048;
/** Bytes read from the client at a time while the guard answers it: it should send nothing. */
const DIRECT_READ_BYTES = 64;
/** Bytes read from the client at a time at most: request heads and small bodies. */
const CLIENT_READ_BYTES = 16 * 1024;
/** Bytes read from the inner server at a time at most: responses, segments, streams. */
const SERVER_READ_BYTES = 64 * 1024;
/** What a refused connection is told before it is closed. */
const REFUSAL = new TextEncoder().encode(
  "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 38\r\n" +
    "Connection: close\r\n\r\ntoo many connections from this address\n",
);

/**
 * Answers the requests the guard serves itself (see {@linkcode GuardOptions.direct}); `info`
 * is what a route sees.
 */
export type DirectHandler = (
  request: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
) => Promise<Response>;

/** What the guard answers itself, on the client's own connection, instead of relaying. */
export interface GuardOptions {
  /** Whether a request (by method and path) is answered by `handler`, not the inner server. */
  readonly direct: (method: string, pathname: string) => boolean;
  readonly handler: DirectHandler;
}

/**
 * One client connection. Its bytes are relayed to the inner server over a relay connection
 * made when the first request that needs it begins, except for requests the guard answers
 * itself: at the start of each request (nothing in flight, no byte of a head yet) it reads
 * the request line, and a request that {@linkcode GuardOptions.direct} picks is read whole
 * and answered on this connection (the relay, if there is one, is closed first, once what
 * the inner server wrote has gone out).
 */
export class GuardedConnection {
  /** The client's address, which the inner server's handler should see. */
  readonly remoteAddr: Deno.NetAddr;
  readonly #client: Deno.Conn;
  readonly #guard: HttpGuard;
  /** The relay connection to the inner server, while there is one. */
  #server: Deno.Conn | undefined;
  /** The relay's copy of the inner server's bytes to the client, while it runs. */
  #toClient: Promise<void> | undefined;
  #inFlight = 0;
  /** Whether a byte came from the client since the last request head was complete. */
  #pending = false;
  #first = true;
  /** The start of a request line or head read so far, while the guard looks at it. */
  #sniffed: Uint8Array | undefined;
  /** A request the guard answers itself is being answered. */
  #direct = false;
  /** Aborted when the connection closes: what a direct answer's request and body watch. */
  readonly #gone = new AbortController();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #bodyTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(client: Deno.Conn, guard: HttpGuard) {
    this.#client = client;
    this.#guard = guard;
    this.remoteAddr = client.remoteAddr as Deno.NetAddr;
  }

  /** `host:port` of the client. */
  get peer(): string {
    return `${this.remoteAddr.hostname}:${this.remoteAddr.port}`;
  }

  /**
   * Serve the connection until either side ends; never rejects. (Callbacks rather than an
   * async function: a guard holds thousands of long answers, each waiting here.)
   */
  run(): Promise<void> {
    this.#arm();
    return this.#readClient().then(() => this.#toClient).then(() => this.close());
  }

  /**
   * The inner server got a complete request head from this connection; with `body`, the
   * body must follow in time ({@linkcode GuardedConnection.bodyDone}).
   */
  requestStarted(body: boolean): void {
    this.#inFlight++;
    this.#pending = false;
    this.#first = false;
    this.#arm();
    if (!body) return;
    const ms = this.#guard.limits.requestTimeoutMs;
    clearTimeout(this.#bodyTimer);
    this.#bodyTimer = setTimeout(
      () => this.close(`request body not complete within ${ms} ms of its head`),
      ms,
    );
  }

  /** The body of the request in flight has been read to its end. */
  bodyDone(): void {
    clearTimeout(this.#bodyTimer);
  }

  /** The inner server finished a response to this connection. */
  requestDone(): void {
    this.#inFlight--;
    clearTimeout(this.#bodyTimer);
    this.#arm();
  }

  /** Close both sides (idempotent), logging `why` at info when given. */
  close(why?: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#bodyTimer);
    this.#gone.abort();
    if (why) this.#guard.logger.info(`http ${this.peer}: closed: ${why}`);
    for (const conn of [this.#client, this.#server]) {
      try {
        conn?.close();
      } catch {
        // already closed
      }
    }
  }

  /** Set the deadline of the state the connection is in now. */
  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#closed || this.#inFlight > 0) return;
    const { requestTimeoutMs, keepAliveTimeoutMs } = this.#guard.limits;
    if (this.#pending || this.#first) {
      const what = this.#first ? "first request head" : "request head";
      this.#timer = setTimeout(
        () => this.close(`${what} not complete within ${requestTimeoutMs} ms`),
        requestTimeoutMs,
      );
    } else {
      this.#timer = setTimeout(
        () => this.close(`idle for ${keepAliveTimeoutMs} ms between requests`),
        keepAliveTimeoutMs,
      );
    }
  }

  /**
   * Read the client until it ends: relay its bytes, or gather a request head the guard may
   * answer itself. Reads start small, so a connection that waits costs little, and grow
   * once a read fills the buffer.
   */
  async #readClient(): Promise<void> {
    let buf = new Uint8Array(FIRST_READ_BYTES);
    try {
      for (;;) {
        // During a direct answer reads only watch for the client's end.
        if (this.#direct && buf.length > DIRECT_READ_BYTES) buf = new Uint8Array(DIRECT_READ_BYTES);
        const n = await this.#client.read(buf);
        if (n === null) break;
        const starting = !this.#pending && this.#inFlight === 0;
        if (!this.#pending) {
          this.#pending = true;
          if (this.#inFlight === 0 && !this.#first) this.#arm();
        }
        // A client may send more after the head of a request answered here: it is dropped.
        if (this.#direct) continue;
        let bytes: Uint8Array | undefined = buf.subarray(0, n);
        if (starting || this.#sniffed) bytes = this.#sniff(bytes);
        if (bytes) await this.#forward(bytes);
        if (this.#closed) return;
        if (n === buf.length && buf.length < CLIENT_READ_BYTES) {
          buf = new Uint8Array(CLIENT_READ_BYTES);
        }
      }
      // The client finished sending: the inner server answers what it has, then closes.
      if (this.#direct || !this.#server) this.close();
      else await this.#server.closeWrite().catch(() => {});
    } catch {
      this.close();
    }
  }

  /**
   * Add `bytes` to the start of a request being looked at. Returns what to relay now (all
   * of it, once it is clear the inner server answers), or `undefined` while more is needed
   * or the guard answers the request itself.
   */
  #sniff(bytes: Uint8Array): Uint8Array | undefined {
    const sniffed = this.#sniffed ? joinBytes([this.#sniffed, bytes]) : bytes.slice();
    this.#sniffed = undefined;
    const line = lineEnd(sniffed);
    if (line < 0) {
      if (sniffed.length > MAX_REQUEST_LINE) return sniffed;
      this.#sniffed = sniffed;
      return undefined;
    }
    const request = parseRequestLine(new TextDecoder("latin1").decode(sniffed.subarray(0, line)));
    const pathname = request?.target.replace(/[?#].*$/s, "");
    if (!request || !this.#guard.options.direct(request.method, pathname!)) return sniffed;
    const end = headEnd(sniffed);
    if (end < 0) {
      if (sniffed.length > MAX_HEAD) {
        void this.#refuse(431, "request head too large");
        return undefined;
      }
      this.#sniffed = sniffed;
      return undefined;
    }
    const head = parseRequestHead(sniffed.subarray(0, end));
    if (!head) {
      void this.#refuse(400, "malformed request head");
      return undefined;
    }
    // A body (or bytes after the head) is more than a direct answer reads: the inner server
    // answers that.
    const length = head.headers.get("content-length");
    if (head.headers.has("transfer-encoding") || (length !== null && length !== "0")) {
      return sniffed;
    }
    if (end < sniffed.length) return sniffed;
    void this.#answer(head);
    return undefined;
  }

  /** Relay `bytes` to the inner server, connecting first when there is no relay. */
  async #forward(bytes: Uint8Array): Promise<void> {
    if (!this.#server) {
      const server = await this.#guard.connectInner(this);
      if (!server || this.#closed) return this.close();
      this.#server = server;
      this.#toClient = this.#relayToClient(server);
    }
    await writeAll(this.#server, bytes);
  }

  /** Copy the inner server's bytes to the client until the relay ends. */
  async #relayToClient(server: Deno.Conn): Promise<void> {
    let buf = new Uint8Array(FIRST_READ_BYTES);
    try {
      for (;;) {
        const n = await server.read(buf);
        if (n === null) break;
        await writeAll(this.#client, buf.subarray(0, n));
        if (n === buf.length && buf.length < SERVER_READ_BYTES) {
          buf = new Uint8Array(SERVER_READ_BYTES);
        }
      }
    } catch {
      // either side went away
    }
    this.#guard.forgetRelay(server);
    try {
      server.close();
    } catch {
      // already closed
    }
    // The relay ends for a direct answer (the guard closed its write side) or for good.
    if (!this.#direct) this.close();
  }

  /** Close the relay once what the inner server wrote has reached the client. */
  async #endRelay(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    // The inner server has answered everything it was sent (nothing is in flight): at the
    // end of its input it closes, and the relay passes on all it wrote before.
    await server.closeWrite().catch(() => {});
    const ms = this.#guard.limits.requestTimeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((resolve) => timer = setTimeout(resolve, ms));
    await Promise.race([this.#toClient, late]);
    clearTimeout(timer);
    this.#toClient = undefined;
    try {
      server.close();
    } catch {
      // already closed
    }
  }

  /** Answer a request the guard serves itself, on this connection. */
  #answer(head: RequestHead): void {
    this.#direct = true;
    this.requestStarted(false);
    const http11 = head.version === "HTTP/1.1";
    const framing = {
      method: head.method,
      http11,
      keepAlive: http11 && !/\bclose\b/i.test(head.headers.get("connection") ?? ""),
      signal: this.#gone.signal,
    };
    // The head and the request are handed on, not kept: a long answer holds only its framing.
    const completed = Promise.withResolvers<void>();
    let unanswered: RequestHead | undefined = head;
    const dispatch = () => {
      const asked = unanswered!;
      unanswered = undefined;
      return this.#dispatch(asked, completed.promise);
    };
    void this.#respond(dispatch, framing, completed);
  }

  /** The routes' answer to `head`. */
  #dispatch(head: RequestHead, completed: Promise<void>): Promise<Response> {
    let url: URL;
    try {
      url = new URL(head.target, `http://${head.headers.get("host") ?? ""}`);
    } catch {
      url = new URL(head.target, `http://${this.#guard.addr.hostname}`);
    }
    const request = new Request(url, {
      method: head.method,
      headers: head.headers,
      signal: this.#gone.signal,
    });
    return this.#guard.options.handler(request, { remoteAddr: this.remoteAddr, completed });
  }

  /**
   * Once the relay has drained, write what `dispatch` answers; then go on or close. (A chain
   * of callbacks, not an async function, for the same reason as `run`.)
   */
  #respond(
    dispatch: () => Promise<Response>,
    framing: ResponseFraming,
    completed: PromiseWithResolvers<void>,
  ): Promise<void> {
    const respond = (): Promise<boolean> | boolean =>
      this.#closed
        ? false
        : dispatch().then((response) => writeResponse(this.#client, response, framing));
    const finish = (reusable: boolean): void => {
      completed.resolve();
      this.#direct = false;
      this.#pending = false;
      if (reusable) this.requestDone();
      else this.close();
    };
    return this.#endRelay().then(respond).then(finish, (error) => {
      finish(false);
      throw error;
    });
  }

  /** Answer `status` to a head the guard cannot take, then close. */
  async #refuse(status: number, why: string): Promise<void> {
    this.#direct = true;
    await this.#endRelay();
    const text = `${why}\n`;
    const answer = `HTTP/1.1 ${status} ${why}\r\ncontent-type: text/plain\r\n` +
      `content-length: ${text.length}\r\nconnection: close\r\n\r\n${text}`;
    await writeAll(this.#client, new TextEncoder().encode(answer)).catch(() => {});
    this.close(`${status}: ${why}`);
  }
}

/**
 * Accepts client connections and relays each to the inner server on `innerPort`, except
 * for the requests it answers itself ({@linkcode GuardOptions}).
 */
export class HttpGuard {
  /** The address clients connect to. */
  readonly addr: Deno.NetAddr;
  /** The deadlines and limits in force. */
  readonly limits: GuardLimits;
  /** What the guard answers itself. */
  readonly options: GuardOptions;
  /** Where refusals and deadline closes are logged. */
  readonly logger: Logger;
  readonly #listener: Deno.Listener;
  readonly #innerPort: number;
  /** Relay connections by their local (loopback) port, as the inner server sees them. */
  readonly #byRelayPort = new Map<number, GuardedConnection>();
  /** Every open client connection. */
  readonly #connections = new Set<GuardedConnection>();
  /** Open connections per client address, and refusals since the address was last below. */
  readonly #perIp = new Map<string, { open: number; refused: number }>();
  readonly #running = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;
  #closed = false;

  constructor(
    listener: Deno.Listener,
    innerPort: number,
    limits: GuardLimits,
    options: GuardOptions,
    logger: Logger,
  ) {
    this.#listener = listener;
    this.addr = listener.addr as Deno.NetAddr;
    this.#innerPort = innerPort;
    this.limits = limits;
    this.options = options;
    this.logger = logger;
    this.#accepting = this.#accept();
  }

  /** The client connection whose relay connection has local port `port`, if any. */
  connectionOf(port: number): GuardedConnection | undefined {
    return this.#byRelayPort.get(port);
  }

  /** A new relay connection to the inner server for `connection`; `undefined` if it failed. */
  async connectInner(connection: GuardedConnection): Promise<Deno.Conn | undefined> {
    let server: Deno.Conn;
    try {
      server = await Deno.connect({ hostname: "127.0.0.1", port: this.#innerPort });
    } catch (error) {
      this.logger.error(`http: cannot reach the inner server: ${(error as Error).message}`);
      return undefined;
    }
    noDelay(server);
    this.#byRelayPort.set((server.localAddr as Deno.NetAddr).port, connection);
    return server;
  }

  /** A relay connection ended. */
  forgetRelay(server: Deno.Conn): void {
    this.#byRelayPort.delete((server.localAddr as Deno.NetAddr).port);
  }

  /** Stop accepting connections; open ones go on. */
  async stopAccepting(): Promise<void> {
    this.#closed = true;
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    await this.#accepting;
  }

  /** Stop accepting and close every connection; resolves once all have ended. */
  async close(): Promise<void> {
    await this.stopAccepting();
    for (const connection of this.#connections) connection.close();
    await Promise.all(this.#running);
  }

  async #accept(): Promise<void> {
    for (;;) {
      let client: Deno.Conn;
      try {
        client = await this.#listener.accept();
      } catch (error) {
        if (this.#closed) return;
        // One connection's failure (reset before accept) must not pause the listener.
        if (error instanceof Deno.errors.BadResource) return;
        // Out of file descriptors is the listener's trouble: give closes a moment.
        if (/os error 2[34]\b/.test(String(error))) await delay(50);
        continue;
      }
      const done = this.#serve(client);
      this.#running.add(done);
      void done.finally(() => this.#running.delete(done));
    }
  }

  /** Serve one client connection until it ends (callbacks, not an async function, as `run`). */
  #serve(client: Deno.Conn): Promise<void> {
    const ip = (client.remoteAddr as Deno.NetAddr).hostname;
    const count = this.#perIp.get(ip) ?? { open: 0, refused: 0 };
    const max = this.limits.maxConnectionsPerIp;
    if (max > 0 && count.open >= max) {
      if (count.refused++ === 0) {
        this.logger.warn(
          `http: refusing connections from ${ip}: ${count.open} open, the limit per address ` +
            `is ${max} (maxConnectionsPerIp)`,
        );
      }
      this.#perIp.set(ip, count);
      return writeAll(client, REFUSAL).catch(() => {}).then(() => {
        try {
          client.close();
        } catch {
          // already closed
        }
      });
    }
    count.open++;
    this.#perIp.set(ip, count);
    // A response's last small write must not wait for an ACK (Nagle's algorithm against
    // delayed ACKs costs 40 ms a response on loopback).
    noDelay(client);
    const connection = new GuardedConnection(client, this);
    this.#connections.add(connection);
    if (this.#closed) connection.close();
    // `run` never rejects.
    return connection.run().then(() => {
      this.#connections.delete(connection);
      count.open--;
      if (count.refused > 0 && count.open < max) {
        this.logger.warn(`http: refused ${count.refused} connections from ${ip} over the limit`);
        count.refused = 0;
      }
      if (count.open === 0) this.#perIp.delete(ip);
    });
  }
}

function noDelay(conn: Deno.Conn): void {
  try {
    (conn as Deno.TcpConn).setNoDelay(true);
  } catch {
    // not a TCP connection, or already closed
  }
}
