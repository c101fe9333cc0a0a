/**
 * The RTMP server: accepts TCP connections and runs one {@linkcode RtmpSession}
 * per connection against a kernel {@linkcode Registry}.
 *
 * @module
 */

import { type Logger, type Registry, silentLogger } from "../../mod.ts";
import { DEFAULT_MAX_MESSAGE_LENGTH } from "./chunk.ts";
import { RtmpSession, type SessionSettings } from "./session.ts";
import { serveTcp } from "../_tcp_server.ts";

/** Options for {@linkcode serveRtmp}. */
export interface RtmpServerOptions {
  /** Where publishers' frames go and players' frames come from. */
  registry: Registry;
  /** The address to listen on (default `"0.0.0.0"`). */
  hostname?: string;
  /** The TCP port; 0 picks a free one (see {@linkcode RtmpServer.addr}). */
  port: number;
  /** Connection, publish, play and error lines (default: silent). */
  logger?: Logger;
  /** Closes the server when aborted. */
  signal?: AbortSignal;
  /** A client must finish the handshake within this time (default 5,000 ms). */
  handshakeTimeoutMs?: number;
  /**
   * A connection that neither sends nor accepts a byte for this long is closed
   * (default 20,000 ms). This bounds clients that stall after the handshake and
   * players whose socket stops draining.
   */
  idleTimeoutMs?: number;
  /** The chunk size the server writes with (default 4096). */
  chunkSize?: number;
  /** The acknowledgement window announced to clients (default 2,500,000 bytes). */
  windowAckSize?: number;
  /** Longer messages close the connection (default 8 MiB). */
  maxMessageLength?: number;
  /**
   * A player that has skipped more than this many frames in all (by falling a whole
   * ring behind) is disconnected (default 512).
   */
  maxLag?: number;
  /**
   * Hold a player's new frames this long (ms) so that what arrives meanwhile goes out in
   * the same write: fewer, larger writes per player for at most this much extra latency;
   * the join (the replayed GOP) is never delayed. Default 0.
   */
  coalesceMs?: number;
}

/**
 * A running RTMP server.
 *
 * @example
 * ```ts
 * import { Registry } from "@arcly/stream";
 * import { serveRtmp } from "@arcly/stream/rtmp";
 *
 * const server = serveRtmp({ registry: new Registry(), hostname: "127.0.0.1", port: 0 });
 * console.log(`rtmp://127.0.0.1:${server.addr.port}/live/NAME`);
 * await server.close();
 * ```
 */
export interface RtmpServer {
  /** The address the server listens on. */
  readonly addr: Deno.NetAddr;
  /** Stop accepting, close every connection (ending their publishes); resolves when done. */
  close(): Promise<void>;
  /** Resolves once the server has closed and every connection has ended. */
  readonly finished: Promise<void>;
}

/**
 * Listen for RTMP publishers and players.
 *
 * Publishers (`rtmp://host:port/APP/NAME?query`) claim `APP/NAME` in the registry
 * (a busy key is refused with `NetStream.Publish.BadName`; the query string goes
 * to the registry's `authorize` hook unchanged). Players get the stream metadata,
 * the cached configs and current GOP, then live frames; an unknown stream gets
 * `NetStream.Play.StreamNotFound`. A protocol error, a stall or a timeout closes only
 * that connection, with a line on the logger saying why.
 *
 * @example Serve RTMP on a free port
 * ```ts
 * import { Registry } from "@arcly/stream";
 * import { serveRtmp } from "@arcly/stream/rtmp";
 *
 * const registry = new Registry();
 * const server = serveRtmp({ registry, hostname: "127.0.0.1", port: 0, logger: console });
 * // ffmpeg -re -i in.mp4 -c copy -f flv rtmp://127.0.0.1:PORT/live/cam
 * await server.close();
 * ```
 */
export function serveRtmp(opts: RtmpServerOptions): RtmpServer {
  const logger = opts.logger ?? silentLogger;
  const settings: SessionSettings = {
    registry: opts.registry,
    logger,
    handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 5_000,
    idleTimeoutMs: opts.idleTimeoutMs ?? 20_000,
    chunkSize: opts.chunkSize ?? 4096,
    windowAckSize: opts.windowAckSize ?? 2_500_000,
    maxMessageLength: opts.maxMessageLength ?? DEFAULT_MAX_MESSAGE_LENGTH,
    maxLag: opts.maxLag ?? 512,
    coalesceMs: opts.coalesceMs ?? 0,
  };
  const server = serveTcp({
    protocol: "rtmp",
    hostname: opts.hostname ?? "0.0.0.0",
    port: opts.port,
    logger,
    sweepEveryMs: Math.max(
      10,
      Math.min(1000, settings.handshakeTimeoutMs / 4, settings.idleTimeoutMs / 4),
    ),
    accept: (conn) => new RtmpSession(conn, settings),
    signal: opts.signal,
  });
  return { addr: server.addr, close: server.close, finished: server.finished };
}
