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
  /** Make the protocol's runner for an accepted connection. */
  accept(conn: Deno.TcpConn): C;
  /** Closes the server when aborted. */
  signal?: AbortSignal;
}

/** A running TCP server and the connections it runs. */
export interface TcpServer<C> {
  /** The address the server listens on. */
  readonly addr: Deno.NetAddr;
  /** The connections running now. */
  readonly connections: ReadonlySet<C>;
  /** Stop accepting, close every connection and wait for them; idempotent. */
  close(): Promise<void>;
  /** Resolves once the server has closed and every connection has ended. */
  readonly finished: Promise<void>;
}

/** Listen on TCP and run `accept(conn)` for each connection until the server closes. */
export function serveTcp<C extends TcpConnectionRunner>(opts: TcpServeOptions<C>): TcpServer<C> {
  const listener = Deno.listen({ hostname: opts.hostname, port: opts.port });
  const connections = new Set<C>();
  const running = new Set<Promise<void>>();
  let closing: Promise<void> | undefined;

  const sweep = setInterval(() => {
    const now = performance.now();
    for (const connection of connections) connection.checkTimeouts(now);
  }, opts.sweepEveryMs);

  const accepting = (async () => {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (closing) return;
        const why = error instanceof Error ? error.message : error;
        opts.logger.error(`${opts.protocol}: accept failed: ${why}`);
        await delay(100);
        continue;
      }
      try {
        conn.setNoDelay(true); // live media: no Nagle delay on small messages
      } catch {
        // not fatal
      }
      const connection = opts.accept(conn);
      connections.add(connection);
      const done = connection.run().finally(() => {
        connection.close("connection ended", "info");
        connections.delete(connection);
        running.delete(done);
      });
      running.add(done);
    }
  })();

  const close = (): Promise<void> => {
    closing ??= (async () => {
      listener.close();
      clearInterval(sweep);
      await accepting;
      for (const connection of connections) connection.close("server shutting down", "info");
      while (running.size > 0) await Promise.allSettled([...running]);
    })();
    return closing;
  };
  opts.signal?.addEventListener("abort", () => void close(), { once: true });
  if (opts.signal?.aborted) void close();

  // `accepting` only returns once close() has closed the listener.
  const finished = accepting.then(close);
  return { addr: listener.addr, connections, close, finished };
}
