/**
 * The caller's side of an SRT connection: one UDP socket towards a listener, the HSv5
 * handshake (induction for the SYN cookie, then the conclusion with HSREQ, the Stream ID
 * and, with a passphrase, KMREQ), each exchange repeated every 250 ms within a deadline,
 * then one {@linkcode SrtConnection} driven by a 10 ms tick until it ends.
 */

import { lookup } from "node:dns/promises";
import { escapeForLog, type Logger } from "../../mod.ts";
import { withDeadline } from "../_deadline.ts";
import { type CloseLevel, type ConnectionMedia, SrtConnection } from "./_connection.ts";
import { SrtCrypto } from "./_crypto.ts";
import { SrtError } from "./error.ts";
import {
  encodeHandshake,
  type Handshake,
  HandshakeExtensionFlag,
  HandshakeType,
  parseHandshake,
  rejectionReason,
  RejectReason,
  SRT_MAGIC,
  SrtFlag,
} from "./handshake.ts";
import { ControlType, controlType, isControl, SRT_HEADER_SIZE } from "./packet.ts";
import type { SrtUrl } from "./url.ts";
import { readU32 } from "./_wire.ts";
import { openUdpSocket, udpAddress, type UdpSocket } from "../_udp_socket.ts";

/** What the caller's media is: received frames or frames it writes. */
export type CallerMedia = Extract<ConnectionMedia, { kind: "receive" } | { kind: "write" }>;

/** Options for {@linkcode callSrt}. */
export interface CallOptions {
  /** Deadline of each handshake step; a peer silent this long is dropped. */
  readonly timeoutMs: number;
  readonly logger: Logger;
  /** Aborting ends the handshake (it rejects) or the connection (it closes, "info"). */
  readonly signal?: AbortSignal;
}

/** How a caller's connection ended. */
export interface CallEnd {
  readonly why: string;
  readonly level: CloseLevel;
}

/** A connected caller. */
export interface CallerSession {
  /** The connection: stats, `write`, `close`. */
  readonly connection: SrtConnection;
  /** The latency the listener receives with (what we send is kept that long at least). */
  readonly sendLatencyMs: number;
  /** Resolves once the connection has ended and the socket is closed. */
  readonly ended: Promise<CallEnd>;
}

const HANDSHAKE_REPEAT_MS = 250;
const TICK_MS = 10;
const SRT_VERSION = 0x010500;
/** What a caller supports, announced in HSREQ. */
const CALLER_FLAGS = SrtFlag.TSBPDSND | SrtFlag.TSBPDRCV | SrtFlag.TLPKTDROP |
  SrtFlag.NAKREPORT | SrtFlag.REXMITFLG;
const MTU = 1500;
const FLOW_WINDOW = 8192;
/** Seven MPEG-TS packets per payload, as libsrt's live mode sends. */
const PAYLOAD_SIZE = 1316;
const MAX_SEND_QUEUE = 16_384;
/** The extension field of an induction request: a datagram socket (UDT_DGRAM). */
const UDT_DGRAM = 2;
/** Time for the SHUTDOWN to leave before the socket closes. */
const SHUTDOWN_DRAIN_MS = 200;

/**
 * Connect to the listener `target` and carry `media`. Resolves once the listener accepted.
 *
 * @throws {SrtError} (rejects) when the listener refuses (its reason as `reason`), does not
 * answer a step within `timeoutMs`, or `signal` aborts first.
 */
export async function callSrt(
  target: SrtUrl,
  media: CallerMedia,
  options: CallOptions,
): Promise<CallerSession> {
  const { timeoutMs, logger, signal } = options;
  const where = target.redacted;
  const resolved = await deadline(lookup(target.hostname), timeoutMs, `${where}: resolving`);
  const address = resolved.address;
  const port = target.port;
  const listener = udpAddress(address, port);
  const clock = () => performance.now();
  const startMs = clock();
  const socketId = 1 + Math.floor(Math.random() * 0x3ffffffe);
  const isn = Math.floor(Math.random() * 0x7fffffff);
  const timestamp = () => Math.floor((clock() - startMs) * 1000) >>> 0;

  let connection: SrtConnection | undefined;
  let answer: ((packet: Uint8Array) => void) | undefined;
  const socket: UdpSocket = await openUdpSocket({
    hostname: resolved.family === 6 ? "::" : "0.0.0.0",
    port: 0,
    maxQueue: MAX_SEND_QUEUE,
    onDatagram: (packet, from, fromPort) => {
      if (fromPort !== port || from !== address || packet.length < SRT_HEADER_SIZE) return;
      if (readU32(packet, 12) !== socketId) return;
      if (connection) return connection.handlePacket(packet, clock());
      // The answer is taken after this turn: a copy (the socket reuses its buffer).
      if (isControl(packet) && controlType(packet) === ControlType.HANDSHAKE) {
        answer?.(packet.slice());
      }
    },
    onError: (error) => logger.error(`srt ${where}: socket error: ${error.message}`),
  });
  const transmit = (packet: Uint8Array) => void socket.send(packet, listener);
  try {
    /** Send `request` every 250 ms until a handshake `accept`s (and return it), or the deadline. */
    const exchange = async (
      request: Handshake,
      step: string,
      accept: (hs: Handshake) => boolean,
    ): Promise<{ hs: Handshake; packet: Uint8Array; atMs: number }> => {
      const got = Promise.withResolvers<{ hs: Handshake; packet: Uint8Array; atMs: number }>();
      answer = (packet) => {
        let hs: Handshake;
        try {
          hs = parseHandshake(packet);
        } catch {
          return;
        }
        if (accept(hs)) got.resolve({ hs, packet, atMs: clock() });
      };
      const aborted = () => got.reject(new SrtError(`${where}: ${step}: stopped`));
      signal?.addEventListener("abort", aborted, { once: true });
      if (signal?.aborted) aborted();
      const send = () => transmit(encodeHandshake(request, timestamp(), 0));
      send();
      const repeat = setInterval(send, HANDSHAKE_REPEAT_MS);
      try {
        return await deadline(got.promise, timeoutMs, `${where}: ${step}`);
      } finally {
        clearInterval(repeat);
        signal?.removeEventListener("abort", aborted);
        answer = undefined;
      }
    };

    const induction = await exchange(
      {
        version: 4,
        encryption: 0,
        extensionField: UDT_DGRAM,
        isn,
        mtu: MTU,
        flowWindow: FLOW_WINDOW,
        type: HandshakeType.INDUCTION,
        socketId,
        cookie: 0,
        peerIp: address,
      },
      "induction",
      (hs) => hs.type === HandshakeType.INDUCTION || rejectionReason(hs.type) !== undefined,
    );
    refuseIfRejected(induction.hs, where);
    if (induction.hs.version < 5 || induction.hs.extensionField !== SRT_MAGIC) {
      throw new SrtError(`${where}: the listener does not speak SRT 1.3 or later (HSv5)`);
    }

    const keys = target.passphrase
      ? await SrtCrypto.create(target.passphrase, target.pbkeylen)
      : undefined;
    const conclusion = await exchange(
      {
        version: 5,
        encryption: keys ? target.pbkeylen / 8 : 0,
        extensionField: HandshakeExtensionFlag.HSREQ | HandshakeExtensionFlag.CONFIG |
          (keys ? HandshakeExtensionFlag.KMREQ : 0),
        isn,
        mtu: MTU,
        flowWindow: FLOW_WINDOW,
        type: HandshakeType.CONCLUSION,
        socketId,
        cookie: induction.hs.cookie,
        peerIp: address,
        hsreq: {
          version: SRT_VERSION,
          flags: CALLER_FLAGS | (keys ? SrtFlag.HAICRYPT : 0),
          receiverLatencyMs: target.latencyMs,
          senderLatencyMs: target.latencyMs,
        },
        keyMaterial: keys?.km,
        streamId: target.streamId,
      },
      "conclusion",
      (hs) => hs.type === HandshakeType.CONCLUSION || rejectionReason(hs.type) !== undefined,
    );
    const hs = conclusion.hs;
    refuseIfRejected(hs, where);
    if (!hs.hsrsp) throw new SrtError(`${where}: the listener's answer has no HSRSP`);
    if (keys && (!hs.keyMaterialResponse || hs.keyMaterialResponse.length <= 4)) {
      throw new SrtError(
        `${where}: the listener did not take the key material (no or another passphrase)`,
        RejectReason.BADSECRET,
      );
    }
    if (!keys && hs.keyMaterialResponse) {
      throw new SrtError(
        `${where}: the listener encrypts; no passphrase given`,
        RejectReason.UNSECURE,
      );
    }
    const receiveLatency = Math.max(target.latencyMs, hs.hsrsp.senderLatencyMs);
    const sendLatency = Math.max(target.latencyMs, hs.hsrsp.receiverLatencyMs);
    const ended = Promise.withResolvers<CallEnd>();
    const peer = address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
    connection = new SrtConnection(
      {
        socketId,
        peerSocketId: hs.socketId,
        peerAddress: address,
        peerPort: port,
        peer,
        isn,
        latencyMs: media.kind === "receive" ? receiveLatency : sendLatency,
        payloadSize: PAYLOAD_SIZE,
        maxPackets: Math.min(FLOW_WINDOW, Math.max(hs.flowWindow, 32)),
        handshakeAtMs: conclusion.atMs,
        handshakeTimestamp: readU32(conclusion.packet, 8),
        key: streamLabel(target.streamId),
        media,
        startMs,
        crypto: keys?.session,
      },
      {
        logger,
        peerIdleTimeoutMs: timeoutMs,
        maxLag: 0,
        catchUpSpeed: 0,
        coalesceMs: 0,
        keyRefreshPackets: 1 << 24,
        clock,
        sendBackedUp: () => socket.backedUp,
      },
      transmit,
      (_, why, level) => {
        clearInterval(ticker);
        signal?.removeEventListener("abort", stop);
        void socket.close(SHUTDOWN_DRAIN_MS).then(() => ended.resolve({ why, level }));
      },
    );
    const live = connection;
    const ticker = setInterval(() => live.tick(clock()), TICK_MS);
    const stop = () => live.close("stopped", "info");
    signal?.addEventListener("abort", stop, { once: true });
    const secured = keys ? `, AES-${target.pbkeylen * 8}` : "";
    logger.info(
      `srt ${where}: connected (socket ${socketId}, latency ${
        media.kind === "receive" ? receiveLatency : sendLatency
      } ms${secured})`,
    );
    if (signal?.aborted) stop();
    return { connection, sendLatencyMs: sendLatency, ended: ended.promise };
  } catch (error) {
    void socket.close();
    throw error;
  }
}

/**
 * The stream a Stream ID names, for logs: `read:live/cam` without a query or credentials
 * (`:USER:PASS`, the `u=`/`s=` of the access control syntax).
 */
function streamLabel(streamId: string | undefined): string {
  if (!streamId) return "(no Stream ID)";
  const simple = /^(publish|read):([^:?]*)/.exec(streamId);
  if (simple) return escapeForLog(`${simple[1]}:${simple[2]}`);
  const resource = /(?:^#!::|,)r=([^,?]*)/.exec(streamId);
  return resource ? escapeForLog(`r=${resource[1]}`) : "(Stream ID)";
}

/** @throws {SrtError} with the listener's reason when `hs` is a rejection. */
function refuseIfRejected(hs: Handshake, where: string): void {
  const reason = rejectionReason(hs.type);
  if (reason === undefined) return;
  const name = Object.entries(RejectReason).find(([, code]) => code === reason)?.[0] ?? "?";
  throw new SrtError(`${where}: the listener refused: ${reason} (${name})`, reason);
}

/** Rejects with an {@linkcode SrtError} after `ms` unless `promise` settles first. */
function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return withDeadline(promise, ms, () => new SrtError(`${what}: no answer within ${ms} ms`));
}
