/**
 * One SRT connection, on either end of the handshake: routes the peer's packets to the
 * receiving engine (MPEG-TS through the demuxer into frames: a publisher to the listener,
 * or a source pulled by a caller) or the sending engine (a listener's reader: the stream's
 * shared MPEG-TS on the play line, paced by the stream's clock; a caller that publishes:
 * its own muxer, frame by frame), encrypts and decrypts, keeps it alive and times it out.
 */

import { ConfigGate, type Logger, type MediaFrame, type StreamHandle } from "../../mod.ts";
import type { UnpublishReason } from "../../mod.ts";
import { TsDecoder, TsEncoder } from "../../media/ts/mod.ts";
import { SrtError } from "./error.ts";
import { encodeHandshake, type Handshake } from "./handshake.ts";
import { keyIndex, type SrtCrypto } from "./_crypto.ts";
import { KeyIndex, type KeyMaterial, parseKeyMaterial } from "./key_material.ts";
import {
  ackAckPacket,
  controlPacket,
  ControlType,
  controlType,
  isControl,
  keepAlivePacket,
  parseAck,
  parseDropRequest,
  parseNak,
  shutdownPacket,
  SRT_HEADER_SIZE,
} from "./packet.ts";
import { type Link, type ReceiverStats, SrtReceiver } from "./_receiver.ts";
import { type SenderStats, SrtSender } from "./_sender.ts";
import { readU32 } from "./_wire.ts";
import { TsReaderSink } from "./_ts_reader_sink.ts";
import { STREAM_TS_FORM, StreamTs } from "./_stream_ts.ts";

/** Settings shared by every connection of one listener (or one caller's connection). */
export interface ConnectionSettings {
  readonly logger: Logger;
  /** A peer silent for this long is dropped. */
  readonly peerIdleTimeoutMs: number;
  /** A reader skipping more frames than this in all is disconnected. */
  readonly maxLag: number;
  /** Readers catch up from the GOP replay to the live edge at this multiple of real time. */
  readonly catchUpSpeed: number;
  /** What arrives within this many ms goes to a reader in one burst. */
  readonly coalesceMs: number;
  /** Readers' key refresh period, in data packets. */
  readonly keyRefreshPackets: number;
  /** Monotonic milliseconds. */
  readonly clock: () => number;
  /** Whether the socket's send queue is backed up (the UDP socket's `backedUp`). */
  readonly sendBackedUp: () => boolean;
}

/** Everything the handshake settled for one connection. */
export interface ConnectionParams {
  /** Our socket id for this peer. */
  readonly socketId: number;
  /** The peer's socket id. */
  readonly peerSocketId: number;
  readonly peerAddress: string;
  readonly peerPort: number;
  /** `address:port` of the peer, for logs. */
  readonly peer: string;
  /** Data sequence numbers start here, both ways. */
  readonly isn: number;
  /** Publishers: latency we receive with. Readers: latency the peer receives with. */
  readonly latencyMs: number;
  /** Bytes per payload sent to a reader. */
  readonly payloadSize: number;
  /** Most packets held in either buffer. */
  readonly maxPackets: number;
  /** When the conclusion arrived (local ms) and its timestamp (peer µs). */
  readonly handshakeAtMs: number;
  readonly handshakeTimestamp: number;
  /** The stream's key (`app/name`), for logs. */
  readonly key: string;
  /** Where the media comes from or goes to. */
  readonly media: ConnectionMedia;
  /** The local time our clock for this connection started at. */
  readonly startMs: number;
  /** The session keys, when the caller encrypts. */
  readonly crypto?: SrtCrypto;
}

/**
 * What a connection carries, one way: frames it receives (the demuxer's output, handed on
 * after the config gate), a stream it reads and paces (a listener's reader), or frames
 * written to it one by one ({@linkcode SrtConnection.write}: a caller that publishes).
 */
export type ConnectionMedia =
  | {
    readonly kind: "receive";
    /** Each frame received, media only after its track's CONFIG. */
    readonly onFrame: (frame: MediaFrame) => void;
    /** The connection ended: `"ended"` when it closed cleanly. */
    readonly onEnd: (reason: UnpublishReason) => void;
    /** Ends the connection when aborted. */
    readonly signal?: AbortSignal;
  }
  | {
    readonly kind: "read";
    readonly handle: StreamHandle;
  }
  | { readonly kind: "write" };

/** Why a connection closed, and how that is logged. */
export type CloseLevel = "info" | "warn" | "error";

/** Counters of one connection, for the listener's totals. */
export interface ConnectionStats {
  receiver?: ReceiverStats;
  sender?: SenderStats;
  /** Control packets that failed to parse, and data that did not decrypt. */
  malformed: number;
  /** Key refreshes: the peer's new keys taken, or ours confirmed. */
  keyRefreshes: number;
}

const KEEPALIVE_MS = 1000;
/** The R bit in byte 4 of a data packet. */
const RETRANSMITTED_FLAG = 0x04;
/** How long a reader waits for the last ACKs once the stream has ended and played out. */
const LINGER_MS = 1500;
/** Beyond the latency, for the last packet's trip and the peer's delivery tick. */
const PLAYOUT_MARGIN_MS = 50;
/** `SRT_CMD_KMREQ` and `SRT_CMD_KMRSP`: subtypes of a USER control packet. */
const KMREQ = 3;
const KMRSP = 4;
/** A key announcement is repeated this often until answered, this many times at most. */
const KM_REPEAT_MS = 250;
const KM_TRIES = 10;

/** The server side of one SRT connection. */
export class SrtConnection implements Link {
  readonly socketId: number;
  readonly peerSocketId: number;
  readonly peerAddress: string;
  readonly peerPort: number;
  /** `address:port` of the peer. */
  readonly peer: string;
  /** A listener's conclusion answer, sent again whenever the caller repeats its conclusion. */
  readonly #response?: Handshake;
  /** Counters so far. */
  readonly stats: ConnectionStats = { malformed: 0, keyRefreshes: 0 };
  readonly #settings: ConnectionSettings;
  readonly #transmit: (packet: Uint8Array) => void;
  readonly #onClosed: (connection: SrtConnection, why: string, level: CloseLevel) => void;
  readonly #key: string;
  readonly #media: ConnectionMedia;
  readonly #startMs: number;
  readonly #latencyMs: number;
  #lastRecvMs: number;
  /** When we last sent, to the tick (for the keep-alive: no clock read per packet). */
  #lastSendMs: number;
  #sentSinceTick = false;
  #closed = false;
  #receiver?: SrtReceiver;
  #decoder?: TsDecoder;
  #sender?: SrtSender;
  #encoder?: TsEncoder;
  /** Ends a reader's play. */
  #playing?: AbortController;
  #wake?: () => void;
  // Encryption: packets wait in order for WebCrypto, in each direction.
  readonly #crypto?: SrtCrypto;
  #outChain: Promise<void> = Promise.resolve();
  #outPending = 0;
  #inChain: Promise<void> = Promise.resolve();
  /** Packets waiting for decryption (bounded by the receive buffer), and a KMREQ being taken. */
  #inPending = 0;
  #installing = false;
  readonly #maxPending: number;
  /** The key data is sent with (readers) or was last received with (publishers). */
  #keyInUse: number = KeyIndex.EVEN;
  /** Readers: first-time data packets sent, for the key refresh. */
  #dataSent = 0;
  /** Readers: the announcement of the next key, until answered. */
  #announcement?: { km: Uint8Array; index: number; sentMs: number; tries: number };
  #nextKeyReady = false;
  /** Media before its CONFIG frame is not published (the kernel's contract). */
  readonly #gate = new ConfigGate();
  readonly #emit: (frame: MediaFrame) => void;

  constructor(
    params: ConnectionParams,
    settings: ConnectionSettings,
    transmit: (packet: Uint8Array) => void,
    onClosed: (connection: SrtConnection, why: string, level: CloseLevel) => void,
    response?: Handshake,
  ) {
    this.#response = response;
    this.socketId = params.socketId;
    this.peerSocketId = params.peerSocketId;
    this.peerAddress = params.peerAddress;
    this.peerPort = params.peerPort;
    this.peer = params.peer;
    this.#settings = settings;
    this.#transmit = transmit;
    this.#onClosed = onClosed;
    this.#key = params.key;
    this.#media = params.media;
    this.#startMs = params.startMs;
    this.#latencyMs = params.latencyMs;
    this.#lastRecvMs = this.#lastSendMs = params.startMs;
    this.#crypto = params.crypto;
    this.#maxPending = params.maxPackets;
    const media = params.media;
    this.#emit = media.kind === "receive"
      ? (frame) => {
        if (this.#gate.admit(frame)) media.onFrame(frame);
      }
      : () => {};
    if (media.kind === "receive") {
      const decoder = new TsDecoder();
      this.#decoder = decoder;
      this.#receiver = new SrtReceiver(this, {
        isn: params.isn,
        latencyMs: params.latencyMs,
        handshakeAtMs: params.handshakeAtMs,
        handshakeTimestamp: params.handshakeTimestamp,
        maxPackets: params.maxPackets,
        deliver: (payload) => decoder.decode(payload, this.#emit),
      });
      this.stats.receiver = this.#receiver.stats;
      media.signal?.addEventListener(
        "abort",
        () => this.close(`stream ${params.key} was ended by the server`, "info"),
        { once: true },
      );
    } else {
      this.#sender = new SrtSender(this, {
        isn: params.isn,
        latencyMs: params.latencyMs,
        payloadSize: params.payloadSize,
        maxPackets: params.maxPackets,
      });
      this.stats.sender = this.#sender.stats;
      // A play hands its replay over at once: the reader starts after this turn, once the
      // listener has queued its conclusion answer ahead of the first data packet.
      if (media.kind === "read") queueMicrotask(() => void this.#read(media.handle));
      else this.#encoder = new TsEncoder();
    }
  }

  /** The stream this connection publishes or reads. */
  get key(): string {
    return this.#key;
  }

  /** Whether the connection has ended. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Sender engine packets neither acknowledged nor given up (0 for a receiving connection). */
  get unacknowledged(): number {
    return this.#sender?.unacknowledged ?? 0;
  }

  /**
   * A caller that publishes: mux `frame` into MPEG-TS and send every full payload now (a
   * partly filled one goes within the sender's flush interval). Ignored once closed.
   */
  write(frame: MediaFrame): void {
    const encoder = this.#encoder;
    if (!encoder || this.#closed) return;
    const bytes = encoder.encode(frame);
    if (bytes) this.#sender!.write(bytes, this.#settings.clock());
  }

  /** A caller that publishes: send what the muxer and the sender still hold, at once. */
  flushWrites(): void {
    const encoder = this.#encoder;
    if (!encoder || this.#closed) return;
    const now = this.#settings.clock();
    const tail = encoder.flush();
    if (tail) this.#sender!.write(tail, now);
    this.#sender!.flush(now);
  }

  /**
   * The conclusion answer, stamped now: the caller sets its clock for our timestamps from
   * the first answer it gets, whichever copy that is.
   */
  conclusionResponse(nowMs: number): Uint8Array {
    return encodeHandshake(this.#response!, this.timestamp(nowMs), this.peerSocketId);
  }

  /** {@linkcode Link}: microseconds since this connection started, wrapping at 32 bits. */
  timestamp(nowMs: number): number {
    return Math.floor((nowMs - this.#startMs) * 1000) >>> 0;
  }

  /** {@linkcode Link}: whether the socket's send queue is backed up. */
  backedUp(): boolean {
    return this.#settings.sendBackedUp();
  }

  /** {@linkcode Link}: send a packet to the peer (data encrypted, when the caller encrypts). */
  send(packet: Uint8Array): void {
    this.#sentSinceTick = true;
    const crypto = this.#crypto;
    if (!crypto) return this.#transmit(packet);
    if (!isControl(packet)) {
      if (!(packet[4] & RETRANSMITTED_FLAG)) this.#countForRefresh(crypto);
      this.#queueOut(crypto.encrypt(packet, this.#keyInUse));
    } else if (this.#outPending > 0) this.#queueOut(Promise.resolve(packet));
    else this.#transmit(packet);
  }

  /** Send `packet` once every packet queued before it has gone. */
  #queueOut(packet: Promise<Uint8Array>): void {
    this.#outPending++;
    this.#outChain = this.#outChain.then(() => packet).then((out) => {
      this.#outPending--;
      if (!this.#closed) this.#transmit(out);
    }, (error) => {
      this.#outPending--;
      this.close(`encrypting: ${message(error)}`, "error");
    });
  }

  /**
   * Readers' key refresh: a quarter period ahead, make the next key and announce both
   * (KMREQ, repeated until answered); at the period, send with the next key.
   */
  #countForRefresh(crypto: SrtCrypto): void {
    const period = this.#settings.keyRefreshPackets;
    const at = ++this.#dataSent % period;
    if (at === period - Math.max(1, period >> 2)) {
      const index = this.#keyInUse === KeyIndex.EVEN ? KeyIndex.ODD : KeyIndex.EVEN;
      this.#nextKeyReady = false;
      void crypto.refresh(index).then((km) => {
        this.#nextKeyReady = true;
        this.#announcement = { km, index, sentMs: -Infinity, tries: 0 };
        this.#announce(this.#settings.clock());
      }, (error) => this.close(`making a key: ${message(error)}`, "error"));
    } else if (at === 0 && this.#nextKeyReady) {
      this.#nextKeyReady = false;
      this.#keyInUse = this.#keyInUse === KeyIndex.EVEN ? KeyIndex.ODD : KeyIndex.EVEN;
    }
  }

  /** Send the pending key announcement, if it is due. */
  #announce(nowMs: number): void {
    const a = this.#announcement;
    if (!a || nowMs - a.sentMs < KM_REPEAT_MS) return;
    if (a.tries++ === KM_TRIES) {
      this.#announcement = undefined;
      this.#settings.logger.warn(`srt ${this.peer}: ${this.key}: the new key was not confirmed`);
      return;
    }
    a.sentMs = nowMs;
    this.send(keyMaterialPacket(KMREQ, a.km, this.timestamp(nowMs), this.peerSocketId));
  }

  /**
   * Handle one packet from the peer (already matched by socket id and address). The packet
   * is read during the call only: the socket receives the next one into the same bytes.
   */
  handlePacket(packet: Uint8Array, nowMs: number): void {
    if (this.#closed) return;
    this.#lastRecvMs = nowMs;
    if (!isControl(packet)) {
      if (this.#crypto) return this.#decrypt(this.#crypto, packet);
      return this.#data(packet, nowMs);
    }
    try {
      this.#control(packet, nowMs);
    } catch (error) {
      if (!(error instanceof SrtError)) throw error;
      this.stats.malformed++;
    }
  }

  #data(packet: Uint8Array, nowMs: number): void {
    try {
      this.#receiver?.onData(packet, nowMs);
    } catch (error) {
      this.close(`${this.key}: bad MPEG-TS: ${message(error)}`, "warn");
    }
  }

  /** Decrypt (in parallel), then hand over in arrival order; clear or unknown-key data is dropped. */
  #decrypt(crypto: SrtCrypto, packet: Uint8Array): void {
    const index = keyIndex(packet);
    const opened = index === KeyIndex.NONE || this.#inPending >= this.#maxPending
      ? undefined
      : crypto.decrypt(packet);
    if (!opened) {
      this.stats.malformed++;
      return;
    }
    this.#keyInUse = index;
    this.#inPending++;
    this.#inChain = this.#inChain.then(() => opened).then((plain) => {
      this.#inPending--;
      if (!this.#closed) this.#data(plain, this.#settings.clock());
    }, () => {
      this.#inPending--;
      this.stats.malformed++;
    });
  }

  /** A KMREQ (the publisher's key refresh) or a KMRSP (a reader confirms ours). */
  #keyMaterial(packet: Uint8Array, subtype: number): void {
    const crypto = this.#crypto;
    if (!crypto) return;
    const body = packet.subarray(SRT_HEADER_SIZE);
    if (subtype === KMRSP) {
      const a = this.#announcement;
      if (a && a.km.length === body.length && a.km.every((b, i) => b === body[i])) {
        this.#announcement = undefined;
        this.stats.keyRefreshes++;
      }
      return;
    }
    let km: KeyMaterial;
    try {
      km = parseKeyMaterial(body);
    } catch (error) {
      return this.close(`${this.key}: ${message(error)}`, "warn");
    }
    // One at a time: a repeat that arrives meanwhile is answered when libsrt repeats again.
    if (this.#installing) return;
    this.#installing = true;
    const answer = body.slice();
    this.#inChain = this.#inChain.then(() => crypto.install(km, this.#keyInUse)).then(() => {
      this.#installing = false;
      if (this.#closed) return;
      this.stats.keyRefreshes++;
      const now = this.#settings.clock();
      this.send(keyMaterialPacket(KMRSP, answer, this.timestamp(now), this.peerSocketId));
    }, (error) => this.close(`${this.key}: bad key material: ${message(error)}`, "warn"));
  }

  #control(packet: Uint8Array, nowMs: number): void {
    switch (controlType(packet)) {
      case ControlType.ACK: {
        if (!this.#sender) return;
        const ack = parseAck(packet);
        this.#sender.onAck(ack, nowMs);
        // Every full (or small) ACK is answered; light ACKs (one word) are not. The ACKACK
        // is what the receiver measures the round trip with and, in libsrt, samples the
        // clock drift of its TSBPD delivery with. It also lets the receiver stop: libsrt
        // sends a full ACK on each 10 ms tick that has something new to acknowledge and
        // repeats an unanswered one every RTT + 4 RTTVar, so answering fewer would cost
        // more ACKs, not fewer datagrams. (libsrt's own sender answers at most one ACK per
        // 10 ms, but its receivers send no more than that.) What sets the number of ACKs
        // a reader sends is how many ticks our data arrives in (see SrtSender.write).
        if (packet.length > SRT_HEADER_SIZE + 4) {
          this.send(ackAckPacket(ack.ackNo, this.timestamp(nowMs), this.peerSocketId));
        }
        return;
      }
      case ControlType.NAK:
        this.#sender?.onNak(parseNak(packet), nowMs);
        return;
      case ControlType.ACKACK:
        this.#receiver?.onAckAck(readU32(packet, 4), nowMs);
        return;
      case ControlType.DROPREQ: {
        if (!this.#receiver) return;
        const drop = parseDropRequest(packet);
        try {
          this.#receiver.onDropRequest(drop.first, drop.last);
        } catch (error) {
          this.close(`${this.key}: bad MPEG-TS: ${message(error)}`, "warn");
        }
        return;
      }
      case ControlType.SHUTDOWN:
        this.close("peer closed the connection", "info", false);
        return;
      case ControlType.USER: {
        const subtype = (packet[2] << 8) | packet[3];
        if (subtype === KMREQ || subtype === KMRSP) this.#keyMaterial(packet, subtype);
        return;
      }
    }
  }

  /** Timers, every 10 ms: engines, keep-alive, idle timeout. */
  tick(nowMs: number): void {
    if (this.#closed) return;
    if (nowMs - this.#lastRecvMs > this.#settings.peerIdleTimeoutMs) {
      this.close(`no packet from the peer for ${this.#settings.peerIdleTimeoutMs} ms`, "warn");
      return;
    }
    try {
      this.#receiver?.tick(nowMs);
    } catch (error) {
      this.close(`${this.key}: bad MPEG-TS: ${message(error)}`, "warn");
      return;
    }
    this.#sender?.tick(nowMs);
    this.#announce(nowMs);
    if (this.#sentSinceTick) {
      this.#sentSinceTick = false;
      this.#lastSendMs = nowMs;
    } else if (nowMs - this.#lastSendMs >= KEEPALIVE_MS) {
      this.send(keepAlivePacket(this.timestamp(nowMs), this.peerSocketId));
    }
  }

  /**
   * End the connection: tell the peer (unless it said so itself), end the publish or the
   * subscription, and log why with the connection's counters.
   */
  close(why: string, level: CloseLevel = "info", notifyPeer = true): void {
    if (this.#closed) return;
    this.#closed = true;
    const now = this.#settings.clock();
    if (notifyPeer) this.#transmit(shutdownPacket(this.timestamp(now), this.peerSocketId));
    if (this.#decoder) {
      try {
        // The input may end mid-picture: a lost peer, a timeout, an error, our own close, and
        // even a SHUTDOWN (libsrt may close before its last packets went out). An open picture
        // that looks cut is dropped, not served.
        this.#decoder.flush(this.#emit, { cutShort: true });
      } catch {
        // what was buffered is lost with the connection
      }
    }
    if (this.#media.kind === "receive") this.#media.onEnd(level === "info" ? "ended" : "error");
    this.#playing?.abort();
    this.#wake?.();
    this.#settings.logger[level](
      `srt ${this.peer}: closed ${this.key}: ${why} (${this.#summary()})`,
    );
    this.#onClosed(this, why, level);
  }

  #summary(): string {
    const r = this.stats.receiver;
    if (r) {
      return `received ${r.received}, lost ${r.lost}, retransmitted ${r.retransmitted}, ` +
        `dropped ${r.dropped}`;
    }
    const s = this.stats.sender!;
    return `sent ${s.sent}, retransmitted ${s.retransmitted} (declined ${s.retransmitsDeclined}), ` +
      `dropped ${s.dropped}`;
  }

  /**
   * A reader: the play line, paced to the stream's clock → the stream's shared MPEG-TS →
   * payloads, then linger for the last ACKs.
   */
  async #read(handle: StreamHandle): Promise<void> {
    if (this.#closed) return; // closed in the turn it was accepted in
    const sender = this.#sender!;
    const clock = this.#settings.clock;
    const shared = handle.derive(STREAM_TS_FORM, () => new StreamTs(handle));
    shared.value.hold();
    const playing = new AbortController();
    this.#playing = playing;
    try {
      const result = await handle.play(new TsReaderSink(sender, shared.value, clock), {
        replay: true,
        maxLag: this.#settings.maxLag,
        signal: playing.signal,
        catchUpSpeed: this.#settings.catchUpSpeed,
        coalesceMs: this.#settings.coalesceMs,
        realTime: true,
      });
      if (result.end === "aborted" || this.#closed) return;
      if (result.end === "failed") throw result.error;
      const tail = shared.value.tail();
      if (tail.length > 0) sender.write(tail, clock());
      sender.flush(clock());
      // The peer plays the last packet out a latency after it was sent, and closes at once
      // on SHUTDOWN, dropping what it still holds: wait for both the ACKs and that time.
      const playedOut = clock() + this.#latencyMs + PLAYOUT_MARGIN_MS;
      const until = playedOut + LINGER_MS;
      while (
        !this.#closed && clock() < until && (sender.unacknowledged > 0 || clock() < playedOut)
      ) await this.#sleep(10);
      if (result.end === "evicted") {
        this.close(`reader of ${this.key} fell too far behind and was evicted`, "warn");
      } else this.close(`stream ${this.key} ended`, "info");
    } catch (error) {
      this.close(`reading ${this.key}: ${message(error)}`, "error");
    } finally {
      shared.value.leave();
      shared.release();
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}

/** A KMREQ or KMRSP control packet carrying `km`. */
function keyMaterialPacket(
  subtype: number,
  km: Uint8Array,
  timestamp: number,
  socketId: number,
): Uint8Array {
  const out = controlPacket(ControlType.USER, subtype, 0, timestamp, socketId, km.length / 4);
  out.set(km, SRT_HEADER_SIZE);
  return out;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
