/**
 * The receiving half of an SRT connection: reorders data packets, reports losses (NAK on
 * each new gap and periodically), acknowledges every 10 ms, measures RTT from ACKACKs,
 * and gives up on a gap once the packet after it is due (timestamp-based packet
 * delivery), so a loss the sender cannot repair never stalls the stream.
 */

import { ackPacket, nakPacket, SEQ_MASK, seqAdd, seqOffset, SRT_HEADER_SIZE } from "./packet.ts";
import { RttEstimator } from "./_rtt.ts";
import { PacketSlots } from "./_slots.ts";
import { readU32 } from "./_wire.ts";

/** Where an engine's control packets go. */
export interface Link {
  /** The peer's socket id, written as every packet's destination. */
  readonly peerSocketId: number;
  /** The timestamp for a packet sent at `nowMs`: microseconds since the connection began. */
  timestamp(nowMs: number): number;
  /** Send one packet to the peer. */
  send(packet: Uint8Array): void;
  /**
   * Whether what is sent now would wait behind a backed-up send queue: retransmissions
   * are put off then (the receiver asks again), so that they do not add to the losses.
   */
  backedUp(): boolean;
}

/** Options for {@linkcode SrtReceiver}. */
export interface ReceiverOptions {
  /** The first data sequence number (from the handshake). */
  isn: number;
  /** The negotiated receive latency: how long a gap is waited for. */
  latencyMs: number;
  /** Local time the peer's handshake arrived, in ms. */
  handshakeAtMs: number;
  /** The timestamp of that handshake (the peer's clock), in µs. */
  handshakeTimestamp: number;
  /** The most packets held at once (default 8192); also the flow window announced. */
  maxPackets?: number;
  /** Largest payload accepted, in bytes (default 1456, what fits a 1500-byte MTU). */
  maxPayload?: number;
  /** In-order payloads. The view is only valid during the call. */
  deliver(payload: Uint8Array): void;
}

/** Counters of one {@linkcode SrtReceiver}. */
export interface ReceiverStats {
  /** Data packets received, retransmissions and duplicates included. */
  received: number;
  /** Payload bytes received. */
  bytes: number;
  /** Packets with the retransmission flag. */
  retransmitted: number;
  /** Sequence numbers found missing when a later one arrived. */
  lost: number;
  /** Packets never received: given up at their deadline or dropped by the sender. */
  dropped: number;
  /** Packets received twice, or after they were given up on. */
  duplicates: number;
  /** Packets delivered in order. */
  delivered: number;
  /** Payload bytes delivered in order. */
  deliveredBytes: number;
  /** NAK packets sent. */
  naks: number;
  /** ACK packets sent. */
  acks: number;
}

/** Receiver counters, all zero. */
export function emptyReceiverStats(): ReceiverStats {
  return {
    received: 0,
    bytes: 0,
    retransmitted: 0,
    lost: 0,
    dropped: 0,
    duplicates: 0,
    delivered: 0,
    deliveredBytes: 0,
    naks: 0,
    acks: 0,
  };
}

const EMPTY = -1;
const DROPPED = -2;
const INITIAL_PACKETS = 256;
const ACK_INTERVAL_MS = 10;
const MIN_NAK_INTERVAL_MS = 20;
const NAK_TRIES = 4;
const RATE_WINDOW_MS = 1000;
const DRIFT_WINDOW_MS = 1000;
const ACK_HISTORY = 32;
const PROBES = 16;

/** The receive side of one connection; driven by packets and a 10 ms tick. */
export class SrtReceiver {
  /** Counters so far. */
  readonly stats: ReceiverStats = emptyReceiverStats();
  /** Round-trip time measured from ACK/ACKACK pairs. */
  readonly rtt: RttEstimator = new RttEstimator();
  readonly #link: Link;
  readonly #deliver: (payload: Uint8Array) => void;
  readonly #latencyMs: number;
  readonly #maxPackets: number;
  /** Held packets: payload, length (or EMPTY/DROPPED), timestamp, last NAK time. */
  readonly #slots: PacketSlots;
  /** Next sequence number to deliver. */
  #next: number;
  /** One past the highest sequence number seen. */
  #end: number;
  // Timestamp-based delivery: a packet's deadline is #timeBase + #drift + its unwrapped
  // timestamp + latency, on the local clock.
  readonly #timeBase: number;
  #drift = 0;
  #tsRaw: number;
  #tsUnwrapped: number;
  #driftRef = NaN;
  #driftWindowStart: number;
  #driftWindowMin = Infinity;
  // Acknowledgement.
  #ackNo = 0;
  #lastAckSeq = -1;
  #lastAckMs = -Infinity;
  #ackAcked = true;
  readonly #ackNos = new Uint32Array(ACK_HISTORY);
  readonly #ackTimes = new Float64Array(ACK_HISTORY);
  // Rates for full ACKs.
  #rateStart: number;
  #ratePackets = 0;
  #rateBytes = 0;
  #packetRate = 0;
  #byteRate = 0;
  #lastArrivalSeq = -1;
  #lastArrivalMs = 0;
  readonly #probes = new Float64Array(PROBES);
  #probeCount = 0;

  constructor(link: Link, options: ReceiverOptions) {
    this.#link = link;
    this.#deliver = options.deliver;
    this.#latencyMs = options.latencyMs;
    this.#maxPackets = options.maxPackets ?? 8192;
    this.#next = options.isn & SEQ_MASK;
    this.#end = this.#next;
    this.#tsRaw = options.handshakeTimestamp >>> 0;
    this.#tsUnwrapped = this.#tsRaw;
    this.#timeBase = options.handshakeAtMs - this.#tsRaw / 1000;
    this.#driftWindowStart = options.handshakeAtMs;
    this.#rateStart = options.handshakeAtMs;
    this.#slots = new PacketSlots(INITIAL_PACKETS, options.maxPayload ?? 1456, EMPTY);
  }

  /** Packets held: received out of order, or awaited in a gap. */
  get buffered(): number {
    return seqOffset(this.#next, this.#end);
  }

  /** The next sequence number to deliver. */
  get nextSeq(): number {
    return this.#next;
  }

  /** Take one data packet (header included). */
  onData(packet: Uint8Array, nowMs: number): void {
    const payloadLength = packet.length - SRT_HEADER_SIZE;
    const slots = this.#slots;
    if (payloadLength <= 0 || payloadLength > slots.slotSize) {
      this.stats.duplicates++;
      return;
    }
    const seq = readU32(packet, 0) & SEQ_MASK;
    const retransmitted = (packet[4] & 0x04) !== 0;
    const timestamp = readU32(packet, 8);
    const stats = this.stats;
    stats.received++;
    stats.bytes += payloadLength;
    this.#ratePackets++;
    this.#rateBytes += payloadLength;
    if (retransmitted) stats.retransmitted++;
    this.#probe(seq, nowMs);
    const unwrapped = this.#unwrap(timestamp);
    if (!retransmitted) this.#sampleDrift(unwrapped, nowMs);

    let d = seqOffset(this.#next, seq);
    if (d < 0) {
      stats.duplicates++;
      return;
    }
    if (d >= this.#maxPackets) {
      // Too far ahead to hold what lies between: give that up.
      this.#skipTo(seqAdd(seq, 1 - this.#maxPackets));
      d = this.#maxPackets - 1;
    }
    while (d >= slots.capacity) this.#grow();
    const i = slots.index(seq);
    if (slots.length[i] >= 0) {
      stats.duplicates++;
      return;
    }
    const seen = seqOffset(this.#next, this.#end);
    if (d >= seen) {
      if (d > seen) this.#reportGap(this.#end, seqAdd(seq, -1), d - seen, nowMs);
      this.#end = seqAdd(seq, 1);
    }
    slots.data.set(packet.subarray(SRT_HEADER_SIZE), i * slots.slotSize);
    slots.length[i] = payloadLength;
    slots.stamp[i] = timestamp;
    if (d === 0) this.#deliverReady();
  }

  /** The sender gave up on `first..last`: stop waiting for them. */
  onDropRequest(first: number, last: number): void {
    let from = seqOffset(this.#next, first);
    const to = seqOffset(this.#next, last);
    if (to < 0 || to >= this.#maxPackets) return;
    if (from < 0) from = 0;
    while (to >= this.#slots.capacity) this.#grow();
    const length = this.#slots.length;
    for (let k = from; k <= to; k++) {
      const i = this.#slots.index(this.#next + k);
      if (length[i] === EMPTY) {
        length[i] = DROPPED;
        this.stats.dropped++;
      }
    }
    if (to >= seqOffset(this.#next, this.#end)) this.#end = seqAdd(last, 1);
    this.#deliverReady();
  }

  /** An ACKACK for full ACK `ackNo` arrived: one RTT sample. */
  onAckAck(ackNo: number, nowMs: number): void {
    for (let k = 0; k < ACK_HISTORY; k++) {
      if (this.#ackNos[k] !== ackNo || ackNo === 0) continue;
      this.rtt.sample(Math.max(1, (nowMs - this.#ackTimes[k]) * 1000));
      this.#ackNos[k] = 0;
      if (ackNo === this.#ackNo) this.#ackAcked = true;
      return;
    }
  }

  /** Timers: too-late drop, ACK every 10 ms, periodic NAK. */
  tick(nowMs: number): void {
    this.#dropTooLate(nowMs);
    if (nowMs - this.#rateStart >= RATE_WINDOW_MS) {
      const seconds = (nowMs - this.#rateStart) / 1000;
      this.#packetRate = Math.round(this.#ratePackets / seconds);
      this.#byteRate = Math.round(this.#rateBytes / seconds);
      this.#rateStart = nowMs;
      this.#ratePackets = 0;
      this.#rateBytes = 0;
    }
    if (nowMs - this.#lastAckMs >= ACK_INTERVAL_MS) this.#ack(nowMs);
    // Half an RTO as libsrt does, but at least NAK_TRIES reports within the latency: before
    // the first RTT sample the RTO is 300 ms, and a lost first NAK would cost the packet.
    const interval = Math.min(this.rtt.timeoutMs / 2, this.#latencyMs / NAK_TRIES);
    this.#periodicNak(nowMs, Math.max(MIN_NAK_INTERVAL_MS, interval));
  }

  #ack(nowMs: number): void {
    const seq = this.#next;
    const repeat = seq === this.#lastAckSeq;
    if (repeat && (this.#ackAcked || nowMs - this.#lastAckMs < this.rtt.timeoutMs)) return;
    this.#ackNo = (this.#ackNo + 1) >>> 0 || 1;
    const slot = this.#ackNo % ACK_HISTORY;
    this.#ackNos[slot] = this.#ackNo;
    this.#ackTimes[slot] = nowMs;
    this.#link.send(ackPacket(
      {
        ackNo: this.#ackNo,
        ackSeq: seq,
        rttUs: Math.round(this.rtt.rttUs),
        rttVarUs: Math.round(this.rtt.varUs),
        availableBuffer: Math.max(2, this.#maxPackets - this.buffered),
        packetRate: this.#packetRate || this.#ratePackets,
        linkCapacity: this.#linkCapacity(),
        byteRate: this.#byteRate || this.#rateBytes,
      },
      this.#link.timestamp(nowMs),
      this.#link.peerSocketId,
    ));
    this.stats.acks++;
    this.#lastAckSeq = seq;
    this.#lastAckMs = nowMs;
    this.#ackAcked = false;
  }

  #reportGap(first: number, last: number, count: number, nowMs: number): void {
    this.stats.lost += count;
    for (let k = 0; k < count; k++) this.#slots.time[this.#slots.index(first + k)] = nowMs;
    this.#link.send(
      nakPacket([[first, last]], this.#link.timestamp(nowMs), this.#link.peerSocketId),
    );
    this.stats.naks++;
  }

  /** Report again every loss not reported within the last `interval` ms. */
  #periodicNak(nowMs: number, interval: number): void {
    const ranges: [number, number][] = [];
    const span = seqOffset(this.#next, this.#end);
    const { length, time } = this.#slots;
    let open = -1;
    for (let k = 0; k < span && ranges.length < 300; k++) {
      const i = this.#slots.index(this.#next + k);
      const due = length[i] === EMPTY && nowMs - time[i] >= interval;
      if (due) {
        time[i] = nowMs;
        const seq = seqAdd(this.#next, k);
        if (open >= 0) ranges[open][1] = seq;
        else open = ranges.push([seq, seq]) - 1;
      } else {
        open = -1;
      }
    }
    if (ranges.length === 0) return;
    this.#link.send(nakPacket(ranges, this.#link.timestamp(nowMs), this.#link.peerSocketId));
    this.stats.naks++;
  }

  /** Skip every gap whose next packet is due: its packets will never be played. */
  #dropTooLate(nowMs: number): void {
    for (;;) {
      const span = seqOffset(this.#next, this.#end);
      if (span === 0) return;
      const slots = this.#slots;
      let k = 0;
      while (k < span && slots.length[slots.index(this.#next + k)] < 0) k++;
      if (k === 0 || k === span) return;
      const due = this.#deadline(slots.stamp[slots.index(this.#next + k)]);
      if (nowMs < due) return;
      this.#skipTo(seqAdd(this.#next, k));
    }
  }

  /** Give up everything before `target` (delivering what is there), then deliver on. */
  #skipTo(target: number): void {
    const slots = this.#slots;
    while (this.#next !== target && this.#next !== this.#end) {
      const i = slots.index(this.#next);
      const length = slots.length[i];
      slots.length[i] = EMPTY;
      this.#next = seqAdd(this.#next, 1);
      if (length === EMPTY) this.stats.dropped++;
      else if (length >= 0) this.#emit(i, length);
    }
    if (this.#next !== target) {
      this.stats.dropped += seqOffset(this.#next, target);
      this.#next = target;
      this.#end = target;
    }
    this.#deliverReady();
  }

  #deliverReady(): void {
    const slots = this.#slots;
    while (this.#next !== this.#end) {
      const i = slots.index(this.#next);
      const length = slots.length[i];
      if (length === EMPTY) return;
      slots.length[i] = EMPTY;
      this.#next = seqAdd(this.#next, 1);
      if (length >= 0) this.#emit(i, length);
    }
  }

  #emit(slot: number, length: number): void {
    this.stats.delivered++;
    this.stats.deliveredBytes += length;
    const at = slot * this.#slots.slotSize;
    this.#deliver(this.#slots.data.subarray(at, at + length));
  }

  /** Double the buffer, keeping the packets held. */
  #grow(): void {
    this.#slots.grow(this.#next, seqOffset(this.#next, this.#end));
  }

  /** The peer's 32-bit µs timestamp as a number that keeps growing across wraps. */
  #unwrap(timestamp: number): number {
    const delta = (timestamp - this.#tsRaw) | 0;
    const unwrapped = this.#tsUnwrapped + delta;
    if (delta > 0) {
      this.#tsRaw = timestamp;
      this.#tsUnwrapped = unwrapped;
    }
    return unwrapped;
  }

  /** The local time a packet stamped `timestamp` is due for playback. */
  #deadline(timestamp: number): number {
    const unwrapped = this.#tsUnwrapped + ((timestamp - this.#tsRaw) | 0);
    return this.#timeBase + this.#drift + unwrapped / 1000 + this.#latencyMs;
  }

  /**
   * Track clock drift: the smallest transit time of each second is compared with the
   * first second's, and deadlines move by the difference.
   */
  #sampleDrift(unwrapped: number, nowMs: number): void {
    const transit = nowMs - this.#timeBase - unwrapped / 1000;
    if (transit < this.#driftWindowMin) this.#driftWindowMin = transit;
    if (nowMs - this.#driftWindowStart < DRIFT_WINDOW_MS) return;
    if (Number.isNaN(this.#driftRef)) this.#driftRef = this.#driftWindowMin;
    else this.#drift = this.#driftWindowMin - this.#driftRef;
    this.#driftWindowStart = nowMs;
    this.#driftWindowMin = Infinity;
  }

  /** Packet pairs (sequence numbers 16n, 16n+1) arriving back to back estimate capacity. */
  #probe(seq: number, nowMs: number): void {
    if ((seq & 15) === 1 && seq === seqAdd(this.#lastArrivalSeq, 1)) {
      this.#probes[this.#probeCount++ % PROBES] = Math.max(0.001, nowMs - this.#lastArrivalMs);
    }
    this.#lastArrivalSeq = seq;
    this.#lastArrivalMs = nowMs;
  }

  #linkCapacity(): number {
    const n = Math.min(this.#probeCount, PROBES);
    if (n === 0) return 1000;
    const sorted = this.#probes.slice(0, n).sort();
    return Math.min(0xffffffff, Math.round(1000 / sorted[n >> 1]));
  }
}
