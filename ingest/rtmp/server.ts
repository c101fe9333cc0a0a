/**
 * The RTMP server: accepts TCP connections and runs one {@linkcode RtmpSession}
 * per connection against a kernel {@linkcode Registry}.
 *
 * @module
 */

import type { TranscodedViews } from "../../media/transcode/views.ts";
import { type Logger, type Registry, silentLogger } from "../../mod.ts";
import { DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_MESSAGE_LENGTH } from "./chunk.ts";
import { RtmpSession, type SessionSettings } from "./session.ts";
import type { TlsListenOptions } from "../tls.ts";
import { serveTcpListeners } from "../_tls_server.ts";

/** Options for {@linkcode serveRtmp}. */
export interface RtmpServerOptions {
  /** Where publishers' frames go and players' frames come from. */
  registry: Registry;
  /** The address to listen on (default `"0.0.0.0"`). */
  hostname?: string;
  /**
   * The TCP port; 0 picks a free one (see {@linkcode RtmpServer.addr}); `null` for no
   * plain listener (RTMPS only).
   */
  port: number | null;
  /**
   * RTMPS (RTMP over TLS; 1936 is usual) with this certificate and key, next to the plain
   * port or instead of it (see {@linkcode RtmpServer.tlsAddr}).
   */
  tls?: TlsListenOptions;
  /**
   * Share the plain port with other listeners that set it too (`SO_REUSEPORT`: the kernel
   * spreads new connections over them), e.g. one RTMP server per worker (default false).
   * Needs Deno's `net` unstable flag (`"unstable": ["net"]` in deno.json).
   */
  reusePort?: boolean;
  /** Connection, publish, play and error lines (default: silent). */
  logger?: Logger;
  /** Closes the server when aborted. */
  signal?: AbortSignal;
  /**
   * A client must finish the handshake within this time of connecting (default 5,000 ms).
   * This and the deadlines below are never extended by stray bytes or control messages.
   */
  handshakeTimeoutMs?: number;
  /** A client must send a `connect` command within this time of the handshake (default 5,000 ms). */
  connectTimeoutMs?: number;
  /**
   * After `connect` (and after a publish or play ends), a client must start publishing or
   * playing within this time (default 10,000 ms).
   */
  commandTimeoutMs?: number;
  /**
   * A publisher that sends no complete message on its stream for this long, or a player
   * that takes none of the bytes written to it for this long, is closed (default 20,000 ms).
   */
  idleTimeoutMs?: number;
  /**
   * A connection holding more than this many bytes of incomplete messages (over all its
   * chunk streams) is closed (default 16 MiB). Before `connect` succeeds, and while the
   * connection plays, the cap is 64 KiB (or this, if smaller). Buffers grow with the bytes
   * that arrive, not with the lengths announced.
   */
  maxBufferedBytes?: number;
  /**
   * Connections from one IP address beyond this many at a time are closed at once,
   * with a log line (default: no limit).
   */
  maxConnectionsPerIp?: number;
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
  /**
   * Transcoded views for players of Opus streams (WHIP publishers), which RTMP players
   * cannot decode: they get the audio as AAC, transcoded once per stream. Without it they
   * get the Opus as Enhanced RTMP carries it.
   */
  transcode?: TranscodedViews;
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
  /** The address the server listens on (the RTMPS one if there is no plain listener). */
  readonly addr: Deno.NetAddr;
  /** The RTMPS listener's address, if there is one. */
  readonly tlsAddr: Deno.NetAddr | undefined;
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
    connectTimeoutMs: opts.connectTimeoutMs ?? 5_000,
    commandTimeoutMs: opts.commandTimeoutMs ?? 10_000,
    idleTimeoutMs: opts.idleTimeoutMs ?? 20_000,
    maxBufferedBytes: opts.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES,
    chunkSize: opts.chunkSize ?? 4096,
    windowAckSize: opts.windowAckSize ?? 2_500_000,
    maxMessageLength: opts.maxMessageLength ?? DEFAULT_MAX_MESSAGE_LENGTH,
    maxLag: opts.maxLag ?? 512,
    coalesceMs: opts.coalesceMs ?? 0,
    transcode: opts.transcode,
  };
  const server = serveTcpListeners({
    protocol: "rtmp",
    hostname: opts.hostname ?? "0.0.0.0",
    port: opts.port,
    logger,
    sweepEveryMs: Math.max(
      10,
      Math.min(
        1000,
        settings.handshakeTimeoutMs / 4,
        settings.connectTimeoutMs / 4,
        settings.commandTimeoutMs / 4,
        settings.idleTimeoutMs / 4,
      ),
    ),
    maxConnectionsPerIp: opts.maxConnectionsPerIp,
    reusePort: opts.reusePort,
    tls: opts.tls,
    accept: (conn) => new RtmpSession(conn, settings),
    signal: opts.signal,
  });
  return {
    addr: server.addr,
    tlsAddr: server.tlsAddr,
    close: server.close,
    finished: server.finished,
  };
}
