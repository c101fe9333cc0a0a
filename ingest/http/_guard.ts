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
 * @module
 */

import { setTimeout as delay } from "node:timers/promises";
import type { Logger } from "../../mod.ts";

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
/** Bytes read from the client at a time at most: request heads and small bodies. */
const CLIENT_READ_BYTES = 16 * 1024;
/** Bytes read from the inner server at a time at most: responses, segments, streams. */
const SERVER_READ_BYTES = 64 * 1024;
/** What a refused connection is told before it is closed. */
const REFUSAL = new TextEncoder().encode(
  "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 38\r\n" +
    "Connection: close\r\n\r\ntoo many connections from this address\n",
);

/** One client connection and its relay connection to the inner server. */
export class GuardedConnection {
  /** The client's address, which the inner server's handler should see. */
  readonly remoteAddr: Deno.NetAddr;
  readonly #client: Deno.Conn;
  readonly #server: Deno.Conn;
  readonly #guard: HttpGuard;
  #inFlight = 0;
  /** Whether a byte came from the client since the last request head was complete. */
  #pending = false;
  #first = true;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #bodyTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(client: Deno.Conn, server: Deno.Conn, guard: HttpGuard) {
    this.#client = client;
    this.#server = server;
    this.#guard = guard;
    this.remoteAddr = client.remoteAddr as Deno.NetAddr;
  }

  /** `host:port` of the client. */
  get peer(): string {
    return `${this.remoteAddr.hostname}:${this.remoteAddr.port}`;
  }

  /** Relay both ways until either side ends; never rejects. */
  async run(): Promise<void> {
    this.#arm();
    await Promise.all([this.#toServer(), this.#toClient()]);
    this.close();
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
    if (why) this.#guard.logger.info(`http ${this.peer}: closed: ${why}`);
    for (const conn of [this.#client, this.#server]) {
      try {
        conn.close();
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

  async #toServer(): Promise<void> {
    try {
      await relay(this.#client, this.#server, CLIENT_READ_BYTES, () => {
        if (this.#pending) return;
        this.#pending = true;
        if (this.#inFlight === 0 && !this.#first) this.#arm();
      });
      await this.#server.closeWrite().catch(() => {});
    } catch {
      this.close();
    }
  }

  async #toClient(): Promise<void> {
    try {
      await relay(this.#server, this.#client, SERVER_READ_BYTES);
    } catch {
      // either side went away
    }
    this.close();
  }
}

/**
 * Copy `from` to `to` until `from` ends, calling `onData` for every read. Reads start
 * small, so a connection that waits costs little, and grow to `maxRead` bytes once a read
 * fills the buffer.
 */
async function relay(
  from: Deno.Conn,
  to: Deno.Conn,
  maxRead: number,
  onData?: () => void,
): Promise<void> {
  let buf = new Uint8Array(FIRST_READ_BYTES);
  for (;;) {
    const n = await from.read(buf);
    if (n === null) return;
    onData?.();
    await writeAll(to, buf.subarray(0, n));
    if (n === buf.length && buf.length < maxRead) buf = new Uint8Array(maxRead);
  }
}

/** Accepts client connections and relays each to the inner server on `innerPort`. */
export class HttpGuard {
  /** The address clients connect to. */
  readonly addr: Deno.NetAddr;
  /** The deadlines and limits in force. */
  readonly limits: GuardLimits;
  /** Where refusals and deadline closes are logged. */
  readonly logger: Logger;
  readonly #listener: Deno.Listener;
  readonly #innerPort: number;
  /** Relay connections by their local (loopback) port, as the inner server sees them. */
  readonly #byRelayPort = new Map<number, GuardedConnection>();
  /** Open connections per client address, and refusals since the address was last below. */
  readonly #perIp = new Map<string, { open: number; refused: number }>();
  readonly #running = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;
  #closed = false;

  constructor(listener: Deno.Listener, innerPort: number, limits: GuardLimits, logger: Logger) {
    this.#listener = listener;
    this.addr = listener.addr as Deno.NetAddr;
    this.#innerPort = innerPort;
    this.limits = limits;
    this.logger = logger;
    this.#accepting = this.#accept();
  }

  /** The client connection whose relay connection has local port `port`, if any. */
  connectionOf(port: number): GuardedConnection | undefined {
    return this.#byRelayPort.get(port);
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
    for (const connection of this.#byRelayPort.values()) connection.close();
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

  async #serve(client: Deno.Conn): Promise<void> {
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
      await writeAll(client, REFUSAL).catch(() => {});
      try {
        client.close();
      } catch {
        // already closed
      }
      return;
    }
    count.open++;
    this.#perIp.set(ip, count);
    try {
      let server: Deno.Conn;
      try {
        server = await Deno.connect({ hostname: "127.0.0.1", port: this.#innerPort });
      } catch (error) {
        this.logger.error(`http: cannot reach the inner server: ${(error as Error).message}`);
        client.close();
        return;
      }
      // A relay must not hold back a response's last small write for an ACK (Nagle's
      // algorithm against delayed ACKs costs 40 ms a response on loopback).
      noDelay(client);
      noDelay(server);
      const relayPort = (server.localAddr as Deno.NetAddr).port;
      const connection = new GuardedConnection(client, server, this);
      this.#byRelayPort.set(relayPort, connection);
      try {
        if (this.#closed) connection.close();
        await connection.run();
      } finally {
        this.#byRelayPort.delete(relayPort);
      }
    } finally {
      count.open--;
      if (count.refused > 0 && count.open < max) {
        this.logger.warn(`http: refused ${count.refused} connections from ${ip} over the limit`);
        count.refused = 0;
      }
      if (count.open === 0) this.#perIp.delete(ip);
    }
  }
}

function noDelay(conn: Deno.Conn): void {
  try {
    (conn as Deno.TcpConn).setNoDelay(true);
  } catch {
    // not a TCP connection, or already closed
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let o = 0; o < bytes.length;) o += await conn.write(bytes.subarray(o));
}
