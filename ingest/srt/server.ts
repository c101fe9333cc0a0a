/**
 * The SRT listener: one UDP socket, the caller-listener handshake (induction with a SYN
 * cookie, conclusion with HSREQ/HSRSP, the Stream ID and, for encrypted callers,
 * KMREQ/KMRSP), and one connection per accepted caller, publishing MPEG-TS into a kernel
 * {@linkcode Registry} or reading it out.
 *
 * @module
 */

import { type Logger, PublishError, type Registry, silentLogger } from "../../mod.ts";
import type { StreamHandle } from "../../mod.ts";
import { type ConnectionParams, SrtConnection } from "./_connection.ts";
import { CookieJar } from "./_cookie.ts";
import { emptyReceiverStats, type ReceiverStats } from "./_receiver.ts";
import { emptySenderStats, type SenderStats } from "./_sender.ts";
import { SrtError } from "./error.ts";
import { MAX_PASSPHRASE, MIN_PASSPHRASE, SrtCrypto } from "./_crypto.ts";
import { parseKeyMaterial } from "./key_material.ts";
import {
  encodeHandshake,
  type Handshake,
  HANDSHAKE_SIZE,
  HandshakeExtensionFlag,
  HandshakeType,
  parseHandshake,
  rejectionType,
  RejectReason,
  SRT_MAGIC,
  SrtFlag,
} from "./handshake.ts";
import { ControlType, controlType, isControl, SRT_HEADER_SIZE } from "./packet.ts";
import { parseStreamId, type StreamIdRequest } from "./stream_id.ts";
import { readU32 } from "./_wire.ts";
import { openUdpSocket, type UdpAddress, udpAddress } from "../_udp_socket.ts";

/** Options for {@linkcode serveSrt}. */
export interface SrtServerOptions {
  /** Where publishers' frames go and readers' frames come from. */
  registry: Registry;
  /** The address to listen on (default `"0.0.0.0"`; an IPv6 address listens on IPv6). */
  hostname?: string;
  /** The UDP port; 0 picks a free one (see {@linkcode SrtServer.addr}). */
  port: number;
  /**
   * The latency the listener asks for in both directions, in ms (default 120, libsrt's
   * default). Each direction uses the larger of this and what the caller asks for.
   */
  latencyMs?: number;
  /** Connection, publish, read, rejection and error lines (default: silent). */
  logger?: Logger;
  /** Closes the server when aborted. */
  signal?: AbortSignal;
  /** A peer that sends nothing (not even a keep-alive) for this long is dropped (default 5,000 ms). */
  peerIdleTimeoutMs?: number;
  /** Most connected peers, handshakes in progress included (default 1,000). */
  maxConnections?: number;
  /** Most packets each connection buffers in either direction (default 8,192). */
  maxPackets?: number;
  /**
   * A reader that has skipped more than this many frames in all (by falling a whole ring
   * behind) is disconnected (default 512).
   */
  maxLag?: number;
  /**
   * The passphrase callers must encrypt with (AES-CTR, keys from PBKDF2 of it), for every
   * stream or per stream and role: a function of the request that returns the passphrase
   * (10 to 79 characters) or `undefined` for a stream served in clear. A caller with the
   * wrong passphrase is refused with `SRT_REJ_BADSECRET` (10); one without a passphrase to
   * an encrypted stream, or encrypting to a clear one, with `SRT_REJ_UNSECURE` (11).
   * Readers get the stream encrypted with the key their handshake set. Default: none.
   */
  passphrase?: string | ((request: SrtPassphraseRequest) => string | undefined);
  /**
   * The key length callers must use with a passphrase, in bytes (16, 24 or 32); another
   * length is refused with `SRT_REJ_UNSECURE`. Default: the caller's choice (libsrt's
   * `pbkeylen`, 16 unless set).
   */
  pbkeylen?: 16 | 24 | 32;
  /**
   * A reader starts on the GOP replay and catches up with the live frames at this multiple
   * of real time (default 1.5; 0 sends the replay in one burst), so that joining does not
   * put a GOP's worth of packets on the link at once.
   */
  catchUpSpeed?: number;
  /**
   * Hold a reader's new frames this long (ms) so that what arrives meanwhile goes out in one
   * burst: fuller payloads, and fewer of the ACKs (and ACKACKs) libsrt sends for each 10 ms
   * in which data arrived, for at most this much extra latency; the join (the replayed GOP)
   * is never delayed. Default 0.
   */
  coalesceMs?: number;
  /**
   * Readers' key refresh: after this many data packets a reader's stream switches to a new
   * key (even/odd), announced a quarter of the period before with a KMREQ (default
   * 2^24, libsrt's `kmrefreshrate`).
   */
  keyRefreshPackets?: number;
}

/** What a {@linkcode SrtServerOptions.passphrase} function is asked about. */
export interface SrtPassphraseRequest {
  /** `"publish"` or `"read"`. */
  readonly action: "publish" | "read";
  /** The app part of the stream key (`live`). */
  readonly app: string;
  /** The stream name. */
  readonly stream: string;
  /** `app/stream`. */
  readonly key: string;
  /** The caller's `address:port`. */
  readonly peer: string;
}

/** Totals over every connection a listener has had. */
export interface SrtServerStats {
  /** Peers connected now. */
  connections: number;
  /** Connections accepted. */
  accepted: number;
  /** Conclusions rejected (each request once, however often it was repeated). */
  rejected: number;
  /** Induction requests answered. */
  inductions: number;
  /** Packets ignored: malformed, a bad cookie, an unknown socket or the wrong address. */
  ignored: number;
  /** Packets dropped because the socket could not send them fast enough. */
  sendOverflow: number;
  /** Key refreshes of encrypted connections: publishers' new keys taken, readers' confirmed. */
  keyRefreshes: number;
  /** Publishers' receive counters, summed. */
  receive: ReceiverStats;
  /** Readers' send counters, summed. */
  send: SenderStats;
}

/**
 * A running SRT listener.
 *
 * @example
 * ```ts
 * import { Registry } from "@arcly/stream";
 * import { serveSrt } from "@arcly/stream/srt";
 *
 * const server = await serveSrt({ registry: new Registry(), hostname: "127.0.0.1", port: 0 });
 * console.log(`srt://127.0.0.1:${server.addr.port}?streamid=publish:live/NAME`);
 * await server.close();
 * ```
 */
export interface SrtServer {
  /** The address the listener is bound to. */
  readonly addr: Deno.NetAddr;
  /** Shut every connection down (ending their publishes), then close the socket. */
  close(): Promise<void>;
  /** Resolves once the server has closed. */
  readonly finished: Promise<void>;
  /** A snapshot of the listener's counters. */
  stats(): SrtServerStats;
}

const TICK_MS = 10;
const SRT_VERSION = 0x010500;
/** What the listener supports, announced in HSRSP. */
const SERVER_FLAGS = SrtFlag.TSBPDSND | SrtFlag.TSBPDRCV | SrtFlag.TLPKTDROP | SrtFlag.NAKREPORT |
  SrtFlag.REXMITFLG;
const MAX_MTU = 1500;
/** IPv4 and UDP headers, then the SRT header: what an MTU holds besides the payload. */
const PACKET_OVERHEAD = 28 + SRT_HEADER_SIZE;
const TS_PACKET = 188;
/** The smallest MTU that carries one MPEG-TS packet per SRT packet. */
const MIN_MTU = PACKET_OVERHEAD + TS_PACKET;
const READ_PAYLOAD = 7 * TS_PACKET;
const REJECTION_MEMORY_MS = 10_000;
const MAX_REJECTIONS = 1024;
const MAX_SEND_QUEUE = 16_384;
/** Time for the connections' SHUTDOWNs to leave before the socket closes. */
const SHUTDOWN_DRAIN_MS = 200;

/** Where a conclusion came from. */
interface Caller {
  /** `address|port|socket id`: one request, however often it is repeated. */
  readonly key: string;
  /** `address:port`, for logs and the registry. */
  readonly label: string;
  readonly address: string;
  readonly port: number;
  /** Where answers go. */
  readonly to: UdpAddress;
}

/** The answer to a conclusion, kept so a repeated conclusion gets the same answer. */
interface Answer {
  readonly packet: Uint8Array;
  readonly until: number;
}

/**
 * Listen for SRT callers (UDP). Resolves once the socket is bound.
 *
 * Callers name a stream with the Stream ID (see {@linkcode parseStreamId}):
 * `publish:live/NAME`, `read:live/NAME`, or `#!::r=live/NAME,m=publish,u=USER,s=SESSION`.
 * Publishers send MPEG-TS, which is demuxed into the registry; readers get the stream
 * muxed into MPEG-TS in 1316-byte payloads, paced by the stream's clock. Before a
 * connection exists the registry's `authorize` hook is asked with the Stream ID's
 * credentials: `publish:live/NAME:USER:PASS` as `user` and `password`, `u=` and `s=` as
 * `user` and `password`, and `s=` without `u=` as `token`. Refusals are SRT rejections a
 * caller reports as the reason: 1400 (malformed Stream ID), 1403 (not authorized), 1404
 * (no such stream or app), 1409 (the stream already has a publisher), 1405/1415
 * (unsupported `m=`/`t=`), 1402 (too many connections), 10 (`SRT_REJ_BADSECRET`: wrong
 * passphrase), 11 (`SRT_REJ_UNSECURE`: a passphrase missing, or given to a stream served in
 * clear), 8 (a pre-1.3 handshake), 12/13/14/15 (stream API, file congestion control, packet
 * filters, groups).
 *
 * Losses are repaired within the latency window (NAK and retransmission both ways); what
 * cannot be repaired in time is skipped at its deadline, and the MPEG-TS demuxer flags
 * the next frame of a damaged track `DISCONTINUITY`. A peer silent for
 * `peerIdleTimeoutMs` is dropped; bad packets are ignored and counted.
 *
 * @example Serve SRT on a free port
 * ```ts
 * import { Registry } from "@arcly/stream";
 * import { serveSrt } from "@arcly/stream/srt";
 *
 * const registry = new Registry();
 * const server = await serveSrt({ registry, hostname: "127.0.0.1", port: 0, logger: console });
 * // ffmpeg -re -i in.ts -c copy -f mpegts 'srt://127.0.0.1:PORT?streamid=publish:live/cam'
 * await server.close();
 * ```
 */
export async function serveSrt(opts: SrtServerOptions): Promise<SrtServer> {
  const logger = opts.logger ?? silentLogger;
  const registry = opts.registry;
  const latencyMs = opts.latencyMs ?? 120;
  const maxConnections = opts.maxConnections ?? 1000;
  const maxPackets = opts.maxPackets ?? 8192;
  const passphraseFor = passphrasePolicy(opts.passphrase);
  const clock = () => performance.now();
  const settings = {
    logger,
    peerIdleTimeoutMs: opts.peerIdleTimeoutMs ?? 5000,
    maxLag: opts.maxLag ?? 512,
    keyRefreshPackets: opts.keyRefreshPackets ?? 1 << 24,
    catchUpSpeed: opts.catchUpSpeed ?? 1.5,
    coalesceMs: opts.coalesceMs ?? 0,
    clock,
    sendBackedUp: () => socket.backedUp,
  };
  const socket = await openUdpSocket({
    hostname: opts.hostname ?? "0.0.0.0",
    port: opts.port,
    maxQueue: MAX_SEND_QUEUE,
    onDatagram,
    onError: (error) => logger.error(`srt: socket error: ${error.message}`),
  });
  const addr = socket.addr;
  const startMs = clock();
  const cookies = new CookieJar(clock);

  const bySocket = new Map<number, SrtConnection>();
  /** Connections and answered or pending conclusions by `address|port|caller socket`. */
  const byPeer = new Map<string, SrtConnection | Answer | "pending">();
  const rejections = new Map<string, Answer>();
  let pending = 0;
  const totals: SrtServerStats = {
    connections: 0,
    accepted: 0,
    rejected: 0,
    inductions: 0,
    ignored: 0,
    sendOverflow: 0,
    keyRefreshes: 0,
    receive: emptyReceiverStats(),
    send: emptySenderStats(),
  };

  const transmit = (packet: Uint8Array, to: UdpAddress): void => {
    if (!socket.send(packet, to)) totals.sendOverflow++;
  };

  /** No new handshakes once closing starts; nothing at all once the socket closes. */
  let stopping = false;
  let closed = false;
  let closing: Promise<void> | undefined;
  let resolveFinished!: () => void;
  const finished = new Promise<void>((resolve) => (resolveFinished = resolve));

  const onClosed = (connection: SrtConnection): void => {
    bySocket.delete(connection.socketId);
    const key = peerKey(connection.peerAddress, connection.peerPort, connection.peerSocketId);
    if (byPeer.get(key) === connection) byPeer.delete(key);
    totals.connections--;
    if (connection.stats.receiver) add(totals.receive, connection.stats.receiver);
    if (connection.stats.sender) add(totals.send, connection.stats.sender);
    totals.ignored += connection.stats.malformed;
    totals.keyRefreshes += connection.stats.keyRefreshes;
  };

  const ticker = setInterval(() => {
    const now = clock();
    for (const connection of bySocket.values()) connection.tick(now);
    for (const [key, answer] of rejections) {
      if (answer.until > now) break;
      rejections.delete(key);
      if (byPeer.get(key) === answer) byPeer.delete(key);
    }
  }, TICK_MS);

  const onInduction = (packet: Uint8Array, port: number, address: string): void => {
    let hs: Handshake;
    try {
      hs = parseHandshake(packet);
    } catch {
      totals.ignored++;
      return;
    }
    totals.inductions++;
    const response: Handshake = {
      version: 5,
      encryption: 0,
      extensionField: SRT_MAGIC,
      isn: hs.isn,
      mtu: Math.min(hs.mtu, MAX_MTU),
      flowWindow: hs.flowWindow,
      type: HandshakeType.INDUCTION,
      socketId: hs.socketId,
      cookie: cookies.make(address, port),
      peerIp: address,
    };
    transmit(encodeHandshake(response, timestamp(), hs.socketId), udpAddress(address, port));
  };

  const timestamp = () => Math.floor((clock() - startMs) * 1000) >>> 0;

  const onConclusion = (datagram: Uint8Array, port: number, address: string): void => {
    const callerSocket = readU32(datagram, SRT_HEADER_SIZE + 24);
    const cookie = readU32(datagram, SRT_HEADER_SIZE + 28);
    if (!cookies.check(address, port, cookie)) {
      totals.ignored++;
      return;
    }
    const key = peerKey(address, port, callerSocket);
    const known = byPeer.get(key);
    if (known === "pending") return;
    const to = udpAddress(address, port);
    if (known instanceof SrtConnection) return transmit(known.conclusionResponse(clock()), to);
    if (known) return transmit(known.packet, to);
    const arrivedMs = clock();
    // The request is decided after this turn: keep a copy (the socket reuses its buffer).
    const packet = datagram.slice();
    const label = address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
    const caller: Caller = { key, label, address, port, to };
    let hs: Handshake;
    try {
      hs = parseHandshake(packet);
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      return reject(caller, basicHandshake(packet), RejectReason.ROGUE, why);
    }
    const refusal = checkCaller(hs);
    if (refusal) return reject(caller, hs, refusal.reason!, refusal.message);
    let request: StreamIdRequest;
    try {
      request = parseStreamId(hs.streamId ?? "");
    } catch (error) {
      const e = error as SrtError;
      return reject(caller, hs, e.reason ?? RejectReason.BAD_REQUEST, e.message);
    }
    if (bySocket.size + pending >= maxConnections) {
      return reject(caller, hs, RejectReason.OVERLOAD, "too many connections");
    }
    byPeer.set(key, "pending");
    pending++;
    const checks = Promise.all([
      registry.authorize({
        action: request.action,
        app: request.app,
        stream: request.stream,
        query: request.query,
        protocol: "srt",
        peer: label,
        // `s=` is the password next to a `u=` user (as MediaMTX reads it), else a token
        credentials: request.password !== undefined || request.user !== undefined
          ? { user: request.user, password: request.password ?? request.session }
          : { token: request.session },
      }),
      openCrypto(hs, request, label),
    ]).then(async ([allowed, crypto]) => ({
      allowed,
      crypto,
      // A reader may wait (bounded) for an on-demand source to start.
      source: allowed && request.action === "read"
        ? await registry.acquire(request.app, request.stream)
        : undefined,
    }));
    void checks.then(({ allowed, crypto, source }) => {
      pending--;
      byPeer.delete(key);
      if (stopping) return;
      if (!allowed) return reject(caller, hs, RejectReason.FORBIDDEN, "not authorized");
      try {
        accept(caller, hs, request, arrivedMs, packet, crypto, source);
      } catch (error) {
        const why = error instanceof Error ? error.message : String(error);
        logger.error(`srt ${label}: accepting failed: ${why}`);
        reject(caller, hs, RejectReason.ISE, why);
      }
    }, (error) => {
      pending--;
      byPeer.delete(key);
      if (stopping) return;
      const e = error instanceof SrtError ? error : undefined;
      const why = error instanceof Error ? error.message : String(error);
      reject(caller, hs, e?.reason ?? RejectReason.ISE, why);
    });
  };

  /**
   * The session keys of an encrypted caller, undefined for a clear one.
   *
   * @throws {SrtError} (rejects) with the reason to refuse the caller with.
   */
  const openCrypto = async (
    hs: Handshake,
    request: StreamIdRequest,
    peer: string,
  ): Promise<SrtCrypto | undefined> => {
    const streamKey = `${request.app}/${request.stream}`;
    const passphrase = passphraseFor({
      action: request.action,
      app: request.app,
      stream: request.stream,
      key: streamKey,
      peer,
    });
    if (passphrase === undefined) {
      if (!hs.keyMaterial) return undefined;
      throw new SrtError(
        `the caller encrypts; ${streamKey} is served in clear`,
        RejectReason.UNSECURE,
      );
    }
    if (!hs.keyMaterial) {
      throw new SrtError(
        `${streamKey} needs a passphrase; the caller sends none`,
        RejectReason.UNSECURE,
      );
    }
    const km = parseKeyMaterial(hs.keyMaterial);
    if (opts.pbkeylen && km.keyLength !== opts.pbkeylen) {
      throw new SrtError(
        `the caller's key is ${km.keyLength} bytes, ${opts.pbkeylen} required`,
        RejectReason.UNSECURE,
      );
    }
    try {
      return await SrtCrypto.open(passphrase, km);
    } catch (error) {
      if (error instanceof SrtError && error.reason === RejectReason.BADSECRET) {
        throw new SrtError(`wrong passphrase for ${streamKey}`, RejectReason.BADSECRET);
      }
      throw error;
    }
  };

  const accept = (
    caller: Caller,
    hs: Handshake,
    request: StreamIdRequest,
    arrivedMs: number,
    packet: Uint8Array,
    crypto: SrtCrypto | undefined,
    source: StreamHandle | undefined,
  ): void => {
    const { label, address, port, to } = caller;
    const streamKey = `${request.app}/${request.stream}`;
    let handle: StreamHandle;
    if (request.action === "publish") {
      try {
        handle = registry.startPublish(request.app, request.stream, {
          protocol: "srt",
          peer: label,
        });
      } catch (error) {
        if (!(error instanceof PublishError)) throw error;
        const reason = error.code === "busy"
          ? RejectReason.CONFLICT
          : error.code === "bad-name"
          ? RejectReason.BAD_REQUEST
          : RejectReason.NOTFOUND;
        return reject(caller, hs, reason, error.message);
      }
    } else {
      const found = source;
      if (!found || found.closed) {
        return reject(caller, hs, RejectReason.NOTFOUND, `${streamKey} not found`);
      }
      handle = found;
    }
    const caps = hs.hsreq!;
    // Each direction takes the larger of what the receiver wants and what the sender asks.
    const receiveLatency = Math.max(latencyMs, caps.senderLatencyMs);
    const sendLatency = Math.max(latencyMs, caps.receiverLatencyMs);
    const mtu = Math.min(hs.mtu, MAX_MTU);
    const socketId = newSocketId(bySocket);
    const now = clock();
    const params: ConnectionParams = {
      socketId,
      peerSocketId: hs.socketId,
      peerAddress: address,
      peerPort: port,
      peer: label,
      isn: hs.isn,
      latencyMs: request.action === "publish" ? receiveLatency : sendLatency,
      payloadSize: Math.min(
        READ_PAYLOAD,
        Math.floor((mtu - PACKET_OVERHEAD) / TS_PACKET) * TS_PACKET,
      ),
      maxPackets: Math.min(maxPackets, Math.max(hs.flowWindow, 32)),
      handshakeAtMs: arrivedMs,
      handshakeTimestamp: readU32(packet, 8),
      key: streamKey,
      media: request.action === "publish"
        ? {
          kind: "receive",
          onFrame: (frame) => handle.publish(frame),
          onEnd: (reason) => registry.endPublish(handle, reason),
          signal: handle.signal,
        }
        : { kind: "read", handle },
      startMs: now,
      crypto,
    };
    const response: Handshake = {
      version: 5,
      encryption: crypto ? hs.encryption : 0,
      extensionField: HandshakeExtensionFlag.HSREQ |
        (crypto ? HandshakeExtensionFlag.KMREQ : 0),
      isn: hs.isn,
      mtu,
      flowWindow: maxPackets,
      type: HandshakeType.CONCLUSION,
      socketId,
      cookie: hs.cookie,
      peerIp: address,
      hsrsp: {
        version: SRT_VERSION,
        flags: SERVER_FLAGS,
        receiverLatencyMs: receiveLatency,
        senderLatencyMs: sendLatency,
      },
      keyMaterialResponse: crypto ? hs.keyMaterial : undefined,
    };
    const connection = new SrtConnection(
      params,
      settings,
      (p) => transmit(p, to),
      onClosed,
      response,
    );
    // The answer is queued before a reader's first data packet can be.
    transmit(connection.conclusionResponse(now), to);
    bySocket.set(socketId, connection);
    byPeer.set(caller.key, connection);
    totals.accepted++;
    totals.connections++;
    const secured = crypto ? `, AES-${crypto.keyLength * 8}` : "";
    logger.info(
      `srt ${label}: ${request.action} ${streamKey} (socket ${socketId}, latency ${params.latencyMs} ms${secured})`,
    );
  };

  const reject = (caller: Caller, hs: Handshake, reason: number, why: string): void => {
    const packet = encodeHandshake(
      {
        version: 5,
        encryption: 0,
        extensionField: 0,
        isn: hs.isn,
        mtu: Math.min(hs.mtu, MAX_MTU),
        flowWindow: hs.flowWindow,
        type: rejectionType(reason),
        socketId: 0,
        cookie: hs.cookie,
        peerIp: caller.address,
      },
      timestamp(),
      hs.socketId,
    );
    totals.rejected++;
    const answer: Answer = { packet, until: clock() + REJECTION_MEMORY_MS };
    if (rejections.size >= MAX_REJECTIONS) {
      const oldest = rejections.keys().next().value!;
      if (byPeer.get(oldest) === rejections.get(oldest)) byPeer.delete(oldest);
      rejections.delete(oldest);
    }
    rejections.set(caller.key, answer);
    byPeer.set(caller.key, answer);
    logger.warn(`srt ${caller.label}: rejected (${reason}): ${why}`);
    transmit(packet, caller.to);
  };

  /** One datagram from the socket; `packet` is valid only during the call. */
  function onDatagram(packet: Uint8Array, address: string, port: number): void {
    if (closed) return;
    if (packet.length < SRT_HEADER_SIZE) {
      totals.ignored++;
      return;
    }
    const dest = readU32(packet, 12);
    if (dest !== 0) {
      const connection = bySocket.get(dest);
      if (
        !connection || connection.peerPort !== port || connection.peerAddress !== address
      ) {
        totals.ignored++;
        return;
      }
      connection.handlePacket(packet, clock());
      return;
    }
    if (!isControl(packet) || controlType(packet) !== ControlType.HANDSHAKE) {
      totals.ignored++;
      return;
    }
    if (packet.length < HANDSHAKE_SIZE || stopping) {
      totals.ignored++;
      return;
    }
    const type = readU32(packet, SRT_HEADER_SIZE + 20);
    if (type === HandshakeType.INDUCTION) onInduction(packet, port, address);
    else if (type === HandshakeType.CONCLUSION) onConclusion(packet, port, address);
    else totals.ignored++;
  }

  const close = (): Promise<void> => {
    closing ??= (async () => {
      stopping = true;
      for (const connection of [...bySocket.values()]) {
        connection.close("server shutting down", "info");
      }
      clearInterval(ticker);
      // Let the shutdown packets go out.
      const socketClosed = socket.close(SHUTDOWN_DRAIN_MS);
      closed = true;
      await socketClosed;
      resolveFinished();
    })();
    return closing;
  };
  opts.signal?.addEventListener("abort", () => void close(), { once: true });
  if (opts.signal?.aborted) void close();

  const stats = (): SrtServerStats => {
    const out = structuredClone(totals);
    for (const connection of bySocket.values()) {
      if (connection.stats.receiver) add(out.receive, connection.stats.receiver);
      if (connection.stats.sender) add(out.send, connection.stats.sender);
      out.ignored += connection.stats.malformed;
      out.keyRefreshes += connection.stats.keyRefreshes;
    }
    return out;
  };
  return { addr, close, finished, stats };
}

/** Why a caller cannot be served whatever it asks for, or undefined. */
function checkCaller(hs: Handshake): SrtError | undefined {
  if (hs.mtu < MIN_MTU) {
    return new SrtError(`MTU ${hs.mtu} is below ${MIN_MTU}`, RejectReason.ROGUE);
  }
  if (hs.version < 5 || !hs.hsreq) {
    return new SrtError(`handshake version ${hs.version} (SRT before 1.3)`, RejectReason.VERSION);
  }
  if (hs.hsreq.flags & SrtFlag.STREAM) {
    return new SrtError("the caller uses the stream (file) API", RejectReason.MESSAGEAPI);
  }
  if (hs.congestion !== undefined && hs.congestion !== "live") {
    return new SrtError(
      `congestion control ${hs.congestion} is not supported`,
      RejectReason.CONGESTION,
    );
  }
  if (hs.filter !== undefined) {
    return new SrtError(`packet filter ${hs.filter} is not supported`, RejectReason.FILTER);
  }
  if (hs.group) return new SrtError("socket groups are not supported", RejectReason.GROUP);
  return undefined;
}

/** The passphrase option as a function; a static passphrase is checked here. */
function passphrasePolicy(
  option: SrtServerOptions["passphrase"],
): (request: SrtPassphraseRequest) => string | undefined {
  const check = (passphrase: string | undefined) => {
    const n = passphrase?.length ?? MIN_PASSPHRASE;
    if (n < MIN_PASSPHRASE || n > MAX_PASSPHRASE) {
      throw new SrtError(
        `an SRT passphrase has ${MIN_PASSPHRASE} to ${MAX_PASSPHRASE} characters, not ${n}`,
        RejectReason.ISE,
      );
    }
    return passphrase;
  };
  if (typeof option === "function") return (request) => check(option(request));
  check(option);
  return () => option;
}

/** The fixed part of a handshake whose extensions would not parse, to reject it. */
function basicHandshake(packet: Uint8Array): Handshake {
  return parseHandshake(packet.subarray(0, HANDSHAKE_SIZE));
}

function peerKey(address: string, port: number, socketId: number): string {
  return `${address}|${port}|${socketId}`;
}

function newSocketId(taken: Map<number, unknown>): number {
  for (;;) {
    const id = 1 + Math.floor(Math.random() * 0x3ffffffe);
    if (!taken.has(id)) return id;
  }
}

function add<T extends object>(into: T, from: T): void {
  const target = into as Record<string, number>;
  for (const [key, value] of Object.entries(from)) target[key] += value as number;
}
