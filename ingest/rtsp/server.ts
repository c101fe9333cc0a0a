/**
 * The RTSP server: accepts TCP connections, owns the shared RTP/RTCP UDP port pair, and
 * runs one {@linkcode RtspConnection} per connection against a kernel registry.
 *
 * @module
 */

import { type Logger, type Registry, silentLogger } from "../../mod.ts";
import type { RtspReaderLimits } from "./message.ts";
import { RtspAuthenticator, type RtspAuthOptions } from "./auth.ts";
import { type ConnectionSettings, RtspConnection } from "./_connection.ts";
import { PublishSession } from "./_session.ts";
import type { Counters } from "./_ingest.ts";
import { UdpPair } from "./_udp.ts";
import type { TlsListenOptions } from "../tls.ts";
import { serveTcpListeners } from "../_tls_server.ts";

/** Options for {@linkcode serveRtsp}. */
export interface RtspServerOptions {
  /** Where publishers' frames go and players' frames come from. */
  registry: Registry;
  /** The address to listen on, TCP and UDP (default `"0.0.0.0"`). */
  hostname?: string;
  /**
   * The TCP port (8554 is usual); 0 picks a free one (see {@linkcode RtspServer.addr});
   * `null` for no plain listener (RTSPS only).
   */
  port: number | null;
  /**
   * RTSPS (RTSP over TLS; 8322 is usual) with this certificate and key, next to the plain
   * port or instead of it (see {@linkcode RtspServer.tlsAddr}). Its clients use
   * interleaved TCP transport.
   */
  tls?: TlsListenOptions;
  /** The UDP port for RTP (`server_port`), even by convention (default 8000). */
  rtpPort?: number;
  /** The UDP port for RTCP (default `rtpPort + 1`). */
  rtcpPort?: number;
  /** Offer RTP over UDP (default true); when false only RTP/AVP/TCP is accepted. */
  udp?: boolean;
  /** Connection, publish, play and error lines (default: silent). */
  logger?: Logger;
  /** Closes the server when aborted. */
  signal?: AbortSignal;
  /**
   * Ask refused clients for credentials (Basic, and Digest with a password lookup);
   * see {@linkcode RtspAuthOptions}. Without it, refusals are 403.
   */
  auth?: RtspAuthOptions;
  /**
   * A session with no request or packet from its client for this long is closed, and so
   * is a connection without sessions or requests (default 60,000 ms; announced as
   * `Session: id;timeout=60`).
   */
  sessionTimeoutMs?: number;
  /** DESCRIBE of a stream that just started waits this long for its configs (default 3,000 ms). */
  describeTimeoutMs?: number;
  /**
   * Connections from one IP address beyond this many at a time are closed at once,
   * with a log line (default: no limit).
   */
  maxConnectionsPerIp?: number;
  /**
   * A request (head and body) or interleaved frame must be complete this long after its
   * first byte, and a new connection's first request this long after the accept; the
   * connection is closed otherwise (default 10,000 ms). This cuts off dribbling clients.
   */
  requestTimeoutMs?: number;
  /**
   * A session (ANNOUNCE or the first SETUP) that has not sent RECORD or PLAY this long
   * later is closed, so an announced key cannot be held by keep-alives alone
   * (default 10,000 ms).
   */
  startTimeoutMs?: number;
  /**
   * A recording publisher that sends no RTP packet, interleaved or over UDP, for this
   * long is closed and its stream ended, keep-alive requests or not (default 10,000 ms).
   */
  mediaTimeoutMs?: number;
  /**
   * A connection whose peer has accepted no data for this long (a TCP player that stopped
   * reading) is closed, as RTMP does (default 45,000 ms).
   */
  stallTimeoutMs?: number;
  /** A player that skipped more than this many frames in all is disconnected (default 512). */
  maxLag?: number;
  /**
   * Hold a player's new frames this long (ms) so that what arrives meanwhile goes out in
   * the same write: fewer, larger writes per player for at most this much extra latency;
   * the join (the replayed GOP) is never delayed. Default 0.
   */
  coalesceMs?: number;
  /**
   * A player starts on the GOP replay at once and catches up with the live frames at this
   * multiple of real time (default 1.5; 0 sends the replay in one burst). GStreamer's
   * `rtspsrc` times packets by their arrival: a burst gives it decreasing timestamps, a
   * paced catch-up gives it none.
   */
  catchUpSpeed?: number;
  /** The largest RTP packet sent, header included (default 1412: 1400 payload bytes). */
  maxPacketSize?: number;
  /** Limits on request heads and bodies. */
  limits?: RtspReaderLimits;
}

/** What went wrong with packets, summed over the server's life. */
export interface RtspServerStats {
  /** RTP packets received from publishers. */
  rtpPacketsReceived: number;
  /**
   * RTP packets dropped: unparsable, wrong payload type, on a channel or track nobody set
   * up, malformed payloads, incomplete fragments, frames before the first keyframe.
   */
  rtpPacketsDropped: number;
  /** RTCP packets received from publishers. */
  rtcpPacketsReceived: number;
  /** RTCP packets dropped as malformed. */
  rtcpPacketsDropped: number;
  /** Datagrams from addresses no session expects. */
  udpUnrouted: number;
  /** Frames published into the registry. */
  framesPublished: number;
}

/** Every deadline of a connection, for the sweep period. */
function timeouts(s: ConnectionSettings): number[] {
  return [
    s.sessionTimeoutMs,
    s.requestTimeoutMs,
    s.startTimeoutMs,
    s.mediaTimeoutMs,
    s.stallTimeoutMs,
  ];
}

/**
 * A running RTSP server.
 *
 * @example
 * ```ts
 * import { Registry } from "@arcly/stream";
 * import { serveRtsp } from "@arcly/stream/rtsp";
 *
 * const server = serveRtsp({ registry: new Registry(), hostname: "127.0.0.1", port: 0, udp: false });
 * console.log(`rtsp://127.0.0.1:${server.addr.port}/live/NAME`);
 * await server.close();
 * ```
 */
export interface RtspServer {
  /** The TCP address the server listens on (the RTSPS one if there is no plain listener). */
  readonly addr: Deno.NetAddr;
  /** The RTSPS listener's address, if there is one. */
  readonly tlsAddr: Deno.NetAddr | undefined;
  /** The bound UDP ports; undefined before {@linkcode RtspServer.ready}, when off or failed. */
  readonly udp: { readonly rtpPort: number; readonly rtcpPort: number } | undefined;
  /** Resolves once the UDP ports are bound (or failed to bind, which is logged). */
  readonly ready: Promise<void>;
  /** Packet counters. */
  stats(): RtspServerStats;
  /** Stop accepting, close every connection (ending their publishes); resolves when done. */
  close(): Promise<void>;
  /** Resolves once the server has closed and every connection has ended. */
  readonly finished: Promise<void>;
}

/**
 * Listen for RTSP publishers and players.
 *
 * Publishers (`ANNOUNCE rtsp://host:port/APP/NAME?query` with SDP, then SETUP per track
 * and RECORD) claim `APP/NAME` in the registry; a busy key gets
 * `400 Stream Already Published`, an unknown app `404`. Players DESCRIBE the stream (an
 * unknown one is `404`), SETUP its tracks and PLAY: they get the cached configs in the
 * SDP, then the current GOP from its keyframe, then live frames, with RTCP sender
 * reports; when the stream ends they get RTCP BYE. Both work over RTP/AVP/TCP
 * (interleaved) and RTP/AVP over UDP. H.264, H.265, AAC and Opus are carried. The
 * registry's `authorize` hook decides every publish and read (with `auth`, refusals are
 * answered with Basic/Digest challenges). Bad input from a client closes only that
 * connection or drops only those packets, with a log line or a counter.
 *
 * @example Serve RTSP on a free TCP port and UDP 8000-8001
 * ```ts
 * import { Registry } from "@arcly/stream";
 * import { serveRtsp } from "@arcly/stream/rtsp";
 *
 * const registry = new Registry();
 * const server = serveRtsp({ registry, hostname: "127.0.0.1", port: 0, logger: console });
 * await server.ready;
 * // ffmpeg -re -i in.mp4 -c copy -f rtsp rtsp://127.0.0.1:PORT/live/cam
 * // ffplay -rtsp_transport udp rtsp://127.0.0.1:PORT/live/cam
 * await server.close();
 * ```
 */
export function serveRtsp(opts: RtspServerOptions): RtspServer {
  const logger = opts.logger ?? silentLogger;
  const hostname = opts.hostname ?? "0.0.0.0";
  const counters: Counters = {
    rtpPacketsReceived: 0,
    rtpPacketsDropped: 0,
    rtcpPacketsReceived: 0,
    rtcpPacketsDropped: 0,
    framesPublished: 0,
  };
  const rtpPort = opts.rtpPort ?? 8000;
  const udp: Promise<UdpPair | undefined> = opts.udp === false
    ? Promise.resolve(undefined)
    : UdpPair.open(hostname, rtpPort, opts.rtcpPort ?? rtpPort + 1, logger).catch((error) => {
      logger.error(
        `rtsp: UDP ports ${rtpPort}-${opts.rtcpPort ?? rtpPort + 1} unavailable, ` +
          `only RTP/AVP/TCP works: ${error instanceof Error ? error.message : error}`,
      );
      return undefined;
    });
  let udpPair: UdpPair | undefined;
  const ready = udp.then((pair) => void (udpPair = pair));
  const maxPacketSize = opts.maxPacketSize ?? 1412;
  if (maxPacketSize < 28 || maxPacketSize > 65535) {
    throw new RangeError(`maxPacketSize ${maxPacketSize} out of range 28..65535`);
  }
  const settings: ConnectionSettings = {
    registry: opts.registry,
    logger,
    counters,
    auth: opts.auth ? new RtspAuthenticator(opts.auth) : undefined,
    udp,
    sessionTimeoutMs: opts.sessionTimeoutMs ?? 60_000,
    describeTimeoutMs: opts.describeTimeoutMs ?? 3_000,
    requestTimeoutMs: opts.requestTimeoutMs ?? 10_000,
    startTimeoutMs: opts.startTimeoutMs ?? 10_000,
    mediaTimeoutMs: opts.mediaTimeoutMs ?? 10_000,
    stallTimeoutMs: opts.stallTimeoutMs ?? 45_000,
    maxLag: opts.maxLag ?? 512,
    coalesceMs: opts.coalesceMs ?? 0,
    catchUpSpeed: opts.catchUpSpeed ?? 1.5,
    maxPayload: maxPacketSize - 12,
    limits: opts.limits ?? {},
  };
  const secureSettings: ConnectionSettings = { ...settings, udp: Promise.resolve(undefined) };
  const server = serveTcpListeners({
    protocol: "rtsp",
    hostname,
    port: opts.port,
    logger,
    sweepEveryMs: Math.max(10, Math.min(1000, ...timeouts(settings).map((ms) => ms / 4))),
    maxConnectionsPerIp: opts.maxConnectionsPerIp,
    tls: opts.tls,
    // Over TLS, media stays in the TLS connection: RTP over UDP would be in clear.
    accept: (conn, secure) => new RtspConnection(conn, secure ? secureSettings : settings),
    signal: opts.signal,
  });

  const stats = (): RtspServerStats => {
    let live = 0;
    for (const connection of server.connections) {
      for (const session of connection.sessions) {
        if (session instanceof PublishSession) live += session.dropped;
      }
    }
    return {
      ...counters,
      rtpPacketsDropped: counters.rtpPacketsDropped + live,
      udpUnrouted: udpPair?.unrouted ?? 0,
    };
  };

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    closing ??= server.close().then(async () => (await udp)?.close());
  const finished = server.finished.then(close);
  return {
    addr: server.addr,
    tlsAddr: server.tlsAddr,
    get udp() {
      return udpPair && { rtpPort: udpPair.rtpPort, rtcpPort: udpPair.rtcpPort };
    },
    ready,
    stats,
    close,
    finished,
  };
}
