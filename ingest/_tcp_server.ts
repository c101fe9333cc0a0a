/**
 * The TCP side every connection-oriented protocol server shares (RTMP, RTSP): accept
 * connections, run each, sweep their timeouts, and shut down without losing one.
 */

import { setTimeout as delay } from "node:timers/promises";
import type { Logger } from "../mod.ts";

/** One accepted connection, as a protocol runs it. */
export interface TcpConnectionRunner {
  /** Serve the connection until it ends; never rejects. */
  run(): Promise<void>;
  /** Close the connection if one of its timeouts passed at `now` (monotonic ms). */
  checkTimeouts(now: number): void;
  /** Close the connection with a logged reason; idempotent. */
  close(why: string, level?: "info" | "warn"): void;
}

/** Options for {@linkcode serveTcp}. */
export interface TcpServeOptions<C extends TcpConnectionRunner> {
  /** The protocol name for log lines, e.g. `"rtmp"`. */
  protocol: string;
  /** The address to listen on. */
  hostname: string;
  /** The TCP port; 0 picks a free one. */
  port: number;
  /** Where accept failures are reported. */
  logger: Logger;
  /** How often the timeouts of every connection are checked, in ms. */
  sweepEveryMs: number;
  /**
   * Connections from one IP address beyond this many at a time are closed as soon as
   * they are accepted, with a log line (default: no limit).
   */
  maxConnectionsPerIp?: number;
  /**
   * Share the port with other listeners that set it too (`SO_REUSEPORT`: the kernel spreads
   * new connections over them), e.g. one per worker. Needs Deno's `net` unstable flag.
   */
  reusePort?: boolean;
  /** Listen with this instead of plain TCP (e.g. TLS on an internal port). */
  listen?: (hostname: string, port: number) => Deno.Listener<Deno.Conn<Deno.NetAddr>, Deno.NetAddr>;
  /** Make the protocol's runner for an accepted connection. */
  accept(conn: Deno.Conn<Deno.NetAddr>): C;
  /** Closes the server when aborted. */
  signal?: AbortSignal;
}

/** What the accept loop has met so far. */
export interface TcpAcceptStats {
  /** Connections the peer reset or aborted before accept completed (skipped at once). */
  abortedBeforeAccept: number;
  /** Times the listener itself failed (e.g. out of file descriptors) and accepting paused. */
  backoffs: number;
  /** Connections closed at once because their address had `maxConnectionsPerIp` already. */
  refusedPerIp: number;
}

/** A running TCP server and the connections it runs. */
export interface TcpServer<C> {
  /** The address the server listens on. */
  readonly addr: Deno.NetAddr;
  /** The connections running now. */
  readonly connections: ReadonlySet<C>;
  /** What the accept loop has met so far. */
  readonly acceptStats: Readonly<TcpAcceptStats>;
  /** Stop accepting, close every connection and wait for them; idempotent. */
  close(): Promise<void>;
  /** Stop accepting but let the connections run; `finished` resolves once they all ended. */
  stopAccepting(): void;
  /** Resolves once the server has closed and every connection has ended. */
  readonly finished: Promise<void>;
}

/**
 * Accept errors that concern one connection (the peer reset it before accept
 * completed, e.g. `ENOTCONN` (os error 107) from reading its address, or
 * `ECONNABORTED`): the listener is fine and the next connection is accepted at once.
 */
const PER_CONNECTION_ERRORS = [
  Deno.errors.NotConnected,
  Deno.errors.ConnectionAborted,
  Deno.errors.ConnectionReset,
  Deno.errors.ConnectionRefused,
  Deno.errors.BrokenPipe,
  Deno.errors.TimedOut,
  Deno.errors.Interrupted,
];

/** How long accepting pauses after the listener itself failed (e.g. `EMFILE`). */
const LISTENER_BACKOFF_MS = 100;
/** Refusals of one address are logged at most this often. */
const REFUSAL_LOG_EVERY_MS = 10_000;

/** Listen on TCP and run `accept(conn)` for each connection until the server closes. */
export function serveTcp<C extends TcpConnectionRunner>(opts: TcpServeOptions<C>): TcpServer<C> {
  const listener = opts.listen
    ? opts.listen(opts.hostname, opts.port)
    : Deno.listen({ hostname: opts.hostname, port: opts.port, reusePort: opts.reusePort });
  const connections = new Set<C>();
  const running = new Set<Promise<void>>();
  const stats: TcpAcceptStats = { abortedBeforeAccept: 0, backoffs: 0, refusedPerIp: 0 };
  const perIp = new PerIpLimit(opts.protocol, opts.maxConnectionsPerIp ?? Infinity, opts.logger);
  let closing: Promise<void> | undefined;
  let draining = false;

  const sweep = setInterval(() => {
    const now = performance.now();
    for (const connection of connections) connection.checkTimeouts(now);
  }, opts.sweepEveryMs);

  const accepting = (async () => {
    for (;;) {
      let conn: Deno.Conn<Deno.NetAddr>;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (closing || draining) return;
        if (PER_CONNECTION_ERRORS.some((type) => error instanceof type)) {
          stats.abortedBeforeAccept++;
          continue;
        }
        stats.backoffs++;
        const why = error instanceof Error ? error.message : error;
        opts.logger.error(
          `${opts.protocol}: accept failed, pausing ${LISTENER_BACKOFF_MS} ms: ${why}`,
        );
        await delay(LISTENER_BACKOFF_MS);
        continue;
      }
      const ip = conn.remoteAddr.hostname;
      if (!perIp.admit(ip)) {
        stats.refusedPerIp++;
        conn.close();
        continue;
      }
      // Live media: no Nagle delay on small messages (a TLS connection has no such switch).
      if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
      const connection = opts.accept(conn);
      connections.add(connection);
      const done = connection.run().finally(() => {
        connection.close("connection ended", "info");
        connections.delete(connection);
        running.delete(done);
        perIp.release(ip);
      });
      running.add(done);
    }
  })();

  const close = (): Promise<void> => {
    closing ??= (async () => {
      if (!draining) listener.close();
      clearInterval(sweep);
      await accepting;
      for (const connection of connections) connection.close("server shutting down", "info");
      while (running.size > 0) await Promise.allSettled([...running]);
    })();
    return closing;
  };
  opts.signal?.addEventListener("abort", () => void close(), { once: true });
  if (opts.signal?.aborted) void close();

  const stopAccepting = () => {
    if (draining || closing) return;
    draining = true;
    listener.close();
  };

  // `accepting` only returns once close() or stopAccepting() has closed the listener.
  const finished = accepting.then(async () => {
    if (!draining) return close();
    while (running.size > 0) await Promise.allSettled([...running]);
    clearInterval(sweep);
  });
  return { addr: listener.addr, connections, acceptStats: stats, close, stopAccepting, finished };
}

/** Counts open connections per IP address and refuses those over the limit, logging sparingly. */
class PerIpLimit {
  #protocol: string;
  #max: number;
  #logger: Logger;
  #open = new Map<string, number>();
  /** Per refused address: when it was last logged and how many refusals since. */
  #refused = new Map<string, { loggedAt: number; since: number }>();

  constructor(protocol: string, max: number, logger: Logger) {
    this.#protocol = protocol;
    this.#max = max;
    this.#logger = logger;
  }

  admit(ip: string): boolean {
    const open = this.#open.get(ip) ?? 0;
    if (open < this.#max) {
      this.#open.set(ip, open + 1);
      return true;
    }
    const now = performance.now();
    const refused = this.#refused.get(ip);
    if (refused && now - refused.loggedAt < REFUSAL_LOG_EVERY_MS) {
      refused.since++;
      return false;
    }
    const more = refused?.since ? ` (${refused.since} more refused since the last line)` : "";
    this.#logger.warn(
      `${this.#protocol}: refused a connection from ${JSON.stringify(ip)}: ` +
        `${open} connections from that address already (limit ${this.#max})${more}`,
    );
    this.#refused.set(ip, { loggedAt: now, since: 0 });
    return false;
  }

  release(ip: string): void {
    const open = (this.#open.get(ip) ?? 1) - 1;
    if (open > 0) this.#open.set(ip, open);
    else {
      this.#open.delete(ip);
      this.#refused.delete(ip);
    }
  }
}
