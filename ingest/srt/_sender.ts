/**
 * The sending half of an SRT connection: cuts a byte stream into fixed-size payloads (each
 * full one sent at once, a partly filled one at the end of the turn it was written in),
 * keeps every packet until it is acknowledged, retransmits what NAKs ask for, gives up on
 * packets older than the latency window (answering NAKs for them with a drop request)
 * and retransmits an unacknowledged tail once the link goes quiet.
 *
 * Retransmission is bounded whatever a receiver reports: the ranges of one NAK are merged,
 * a packet is sent again at most once per round trip, and a token bucket holds the
 * retransmission rate to the stream's own packet rate (with a floor), its burst to the
 * packets in flight. A NAK naming the whole window many times over costs one window at
 * most, and NAKs repeated within a round trip cost nothing but their parsing.
 *
 * What was reported lost (by a NAK, or as the hole an ACK stops at) is followed up: sent
 * again each round trip until acknowledged, without waiting for the receiver to report
 * it again, so a lost NAK or a lost retransmission does not cost the packet its deadline;
 * but never sooner than an ACK has been taking to cover a packet, measured on this side's
 * clock, so that a busy server does not resend what is only in flight or late to be
 * acknowledged (at 1,000 readers on one core that was 3 retransmissions per packet sent).
 * Nor is anything sent again while the socket's send queue is backed up: a server short of
 * time would spend it on retransmissions that wait behind the losses they repair, or push
 * more of the queue over its end, and lose more; the receiver asks again.
 */

import {
  type AckInfo,
  dropRequestPacket,
  MSGNO_MASK,
  PacketPosition,
  SEQ_MASK,
  seqAdd,
  seqOffset,
  type SeqRange,
  SRT_HEADER_SIZE,
} from "./packet.ts";
import type { Link } from "./_receiver.ts";
import { RttEstimator } from "./_rtt.ts";
import { PacketSlots } from "./_slots.ts";
import { writeU32 } from "./_wire.ts";

/** Options for {@linkcode SrtSender}. */
export interface SenderOptions {
  /** The first data sequence number (from the handshake). */
  isn: number;
  /** The peer's receive latency; packets are kept at least this long (and 1 s). */
  latencyMs: number;
  /** Payload bytes per packet (1316: seven MPEG-TS packets). */
  payloadSize: number;
  /** The most packets kept for retransmission (default 8192). */
  maxPackets?: number;
}

/** Counters of one {@linkcode SrtSender}. */
export interface SenderStats {
  /** Data packets sent the first time. */
  sent: number;
  /** Payload bytes sent the first time. */
  bytes: number;
  /** Retransmissions sent. */
  retransmitted: number;
  /** Packets given up before they were acknowledged. */
  dropped: number;
  /** Drop requests sent. */
  dropRequests: number;
  /** NAKed packets not sent again: already retransmitted within the round trip, or over budget. */
  retransmitsDeclined: number;
}

/** Sender counters, all zero. */
export function emptySenderStats(): SenderStats {
  return {
    sent: 0,
    bytes: 0,
    retransmitted: 0,
    dropped: 0,
    dropRequests: 0,
    retransmitsDeclined: 0,
  };
}

/** A reader's buffer starts this small (21 KiB) and doubles as packets wait for ACKs. */
const INITIAL_PACKETS = 16;
const MIN_KEEP_MS = 1000;
const TAIL_RETRANSMIT_PACKETS = 16;
/** Receivers acknowledge every 10 ms but may be late by a few ticks: wait this long at least. */
const TAIL_QUIET_MS = 60;
/** Word 1 of a data packet: a whole message (PP=11), in order (O=1), not encrypted. */
const SOLO_IN_ORDER = (PacketPosition.SOLO << 30) | 0x20000000;
const RETRANSMITTED = 0x04;
/** A packet is not sent again sooner than this after its last retransmission (nor an RTT). */
const MIN_REXMIT_INTERVAL_MS = 10;
/** A packet may be sent again this many times at least within the latency. */
const REXMIT_TRIES = 8;
/** Retransmissions allowed per second at least, whatever the stream's own rate. */
const MIN_REXMIT_PER_SECOND = 500;
/** The retransmission burst allowed at least, whatever is in flight. */
const MIN_REXMIT_BURST = 256;
/** Examining a packet retransmitted too recently costs this share of a retransmission. */
const DECLINE_COST = 1 / 8;
const RATE_WINDOW_MS = 1000;
/** The most packets followed up after their retransmission. */
const MAX_LOSS_LIST = 1024;
/** Receivers send a full ACK this often. */
const ACK_INTERVAL_MS = 10;

/** The send side of one connection; driven by writes, ACKs, NAKs and a 10 ms tick. */
export class SrtSender {
  /** Counters so far. */
  readonly stats: SenderStats = emptySenderStats();
  /** Round-trip time as the receiver reports it in its ACKs. */
  readonly rtt: RttEstimator = new RttEstimator();
  /**
   * How long an ACK takes to cover a packet, on this side's clock: from handing the packet
   * to the link to handling the ACK, so the send queue, the receiver's ACK timer and this
   * event loop's own lag count too (the receiver's RTT has none of that).
   */
  readonly #ackDelay = new RttEstimator();
  readonly #link: Link;
  readonly #payloadSize: number;
  readonly #keepMs: number;
  readonly #latencyMs: number;
  readonly #maxPackets: number;
  /** Packets kept: header and payload, packet length, time first sent. */
  readonly #slots: PacketSlots;
  /** Oldest packet kept. */
  #base: number;
  /** Sequence number of the next packet (the one being filled, if any). */
  #next: number;
  /** First sequence number not acknowledged; `[#ackSeq, #base)` were given up. */
  #ackSeq: number;
  #msgNo = 1;
  #fill = 0;
  /** When the partly filled payload was last written to. */
  #fillMs = 0;
  /** Whether the partly filled payload is to go at the end of this turn. */
  #flushQueued = false;
  #lastSendMs = -Infinity;
  #lastAckMs = -Infinity;
  #lastTailMs = -Infinity;
  // Retransmission budget: a token bucket refilled at the stream's packet rate.
  #tokens = MIN_REXMIT_BURST;
  #tokensAtMs = -Infinity;
  #rateStartMs = -Infinity;
  #rateSent = 0;
  #packetsPerSecond = 0;
  /** Packets retransmitted and not yet acknowledged, oldest first. */
  readonly #lost = new Set<number>();

  constructor(link: Link, options: SenderOptions) {
    this.#link = link;
    this.#payloadSize = options.payloadSize;
    this.#keepMs = Math.max(options.latencyMs, MIN_KEEP_MS) + 20;
    this.#latencyMs = options.latencyMs;
    this.#maxPackets = options.maxPackets ?? 8192;
    this.#base = this.#next = this.#ackSeq = options.isn & SEQ_MASK;
    this.#slots = new PacketSlots(INITIAL_PACKETS, SRT_HEADER_SIZE + options.payloadSize, 0);
  }

  /** Packets sent and neither acknowledged nor given up. */
  get unacknowledged(): number {
    return seqOffset(this.#base, this.#next);
  }

  /** Bytes written but not sent yet (an unfilled payload). */
  get pending(): number {
    return this.#fill;
  }

  /**
   * Append stream bytes. Every full payload is sent at once, what is left over at the end
   * of this turn (after every write of a play batch, say), so that a batch leaves in one
   * burst: a libsrt receiver sends a full ACK for each 10 ms in which data arrived (and we
   * answer each with an ACKACK), so a tail sent on a later tick would cost two datagrams
   * more, and the frame it ends would wait for it.
   */
  write(bytes: Uint8Array, nowMs: number): void {
    let off = 0;
    while (off < bytes.length) {
      if (this.#fill === 0) this.#open();
      const at = this.#slots.offset(this.#next) + SRT_HEADER_SIZE + this.#fill;
      const n = Math.min(this.#payloadSize - this.#fill, bytes.length - off);
      this.#slots.data.set(bytes.subarray(off, off + n), at);
      this.#fill += n;
      off += n;
      if (this.#fill === this.#payloadSize) this.#finish(nowMs);
    }
    this.#fillMs = nowMs;
    if (this.#fill > 0 && !this.#flushQueued) {
      this.#flushQueued = true;
      queueMicrotask(this.#flushAtTurnEnd);
    }
  }

  #flushAtTurnEnd = (): void => {
    this.#flushQueued = false;
    this.flush(this.#fillMs);
  };

  /** Send the unfilled payload, if any, as it is. */
  flush(nowMs: number): void {
    if (this.#fill > 0) this.#finish(nowMs);
  }

  /** An ACK arrived: release what it covers and take its RTT. */
  onAck(ack: AckInfo, nowMs: number): void {
    const seq = ack.ackSeq;
    if (seqOffset(seq, this.#next) < 0) return;
    if (seqOffset(this.#ackSeq, seq) > 0) {
      this.#sampleAckDelay(seq, nowMs);
      this.#ackSeq = seq;
    }
    if (seqOffset(this.#base, seq) > 0) this.#base = seq;
    if (ack.rttUs !== undefined) this.rtt.adopt(ack.rttUs, ack.rttVarUs ?? ack.rttUs / 2);
    this.#lastAckMs = nowMs;
    this.#repairAckHole(seq);
  }

  /** An ACK moved to `seq`: how long after it was first sent did the packet before it wait? */
  #sampleAckDelay(seq: number, nowMs: number): void {
    const last = seqAdd(seq, -1);
    if (seqOffset(this.#base, last) < 0) return;
    const i = this.#slots.index(last);
    // A packet sent more than once cannot tell which sending the ACK answers.
    if (this.#slots.mark[i] !== -Infinity) return;
    this.#ackDelay.sample((nowMs - this.#slots.time[i]) * 1000);
  }

  /**
   * The receiver still waits for `seq` although later packets went out: follow it up as
   * if reported lost (libsrt repeats neither an ACK that does not advance nor, until it
   * has measured the round trip, a NAK sooner than ~300 ms, so a lost NAK would cost it).
   */
  #repairAckHole(seq: number): void {
    if (seqOffset(this.#base, seq) < 0 || seqOffset(seq, this.#next) <= 1) return;
    if (this.#lost.size < MAX_LOSS_LIST) this.#lost.add(seq);
  }

  /**
   * Send again, without waiting for another NAK, what was reported lost and is still not
   * acknowledged a round trip and an ACK interval after it was last sent: a lost
   * retransmission is repaired in time even when the receiver is slow to report it again.
   */
  #repairLosses(nowMs: number): void {
    if (this.#lost.size === 0 || this.#link.backedUp()) return;
    this.#refill(nowMs);
    const slots = this.#slots;
    // Not before an ACK could have covered it: when this event loop or the link is slow,
    // packets only in flight (or whose ACK is still queued) would go again and again, and
    // each time add to what makes it slow.
    const wait = Math.max(
      this.#rexmitInterval() + ACK_INTERVAL_MS,
      this.#ackDelay.sampled ? this.#ackDelay.timeoutMs : 0,
    );
    for (const seq of this.#lost) {
      if (seqOffset(this.#ackSeq, seq) < 0 || seqOffset(this.#base, seq) < 0) {
        this.#lost.delete(seq);
        continue;
      }
      if (this.#tokens < 1) return;
      const i = slots.index(seq);
      if (nowMs - Math.max(slots.time[i], slots.mark[i]) < wait) continue;
      this.#tokens--;
      this.#retransmit(seq, nowMs);
    }
  }

  /** How soon a packet may be sent again: once per round trip, several times per latency. */
  #rexmitInterval(): number {
    return Math.max(
      MIN_REXMIT_INTERVAL_MS,
      Math.min(this.rtt.rttUs / 1000, this.#latencyMs / REXMIT_TRIES),
    );
  }

  /**
   * A NAK arrived: retransmit what is kept (merged, each packet at most once per round
   * trip, within the budget), ask the receiver to drop what is not.
   */
  onNak(losses: readonly SeqRange[], nowMs: number): void {
    const sent = seqOffset(this.#base, this.#next);
    const spans: [number, number][] = [];
    let dropFirst = -1;
    for (const [first, last] of losses) {
      const lo = seqOffset(this.#base, first);
      const hi = seqOffset(this.#base, last);
      if (lo < 0 && (dropFirst < 0 || seqOffset(first, dropFirst) > 0)) dropFirst = first;
      const from = Math.max(lo, 0);
      const to = Math.min(hi, sent - 1);
      if (from <= to) spans.push([from, to]);
    }
    if (dropFirst >= 0) this.#dropRequest(dropFirst, seqAdd(this.#base, -1), nowMs);
    if (spans.length === 0) return;
    spans.sort((a, b) => a[0] - b[0]);
    this.#refill(nowMs);
    // Backed up, the socket would hold a retransmission behind what already waits, or drop
    // it: declined as over budget, until the receiver asks again (libsrt repeats its losses).
    const backedUp = this.#link.backedUp();
    const slots = this.#slots;
    const interval = this.#rexmitInterval();
    let done = -1;
    for (const [from, to] of spans) {
      for (let k = Math.max(from, done + 1); k <= to; k++) {
        if (backedUp || this.#tokens < 1) {
          this.stats.retransmitsDeclined += to - k + 1;
          done = to;
          break;
        }
        const seq = seqAdd(this.#base, k);
        const i = slots.index(seq);
        if (nowMs - slots.mark[i] < interval) {
          this.#tokens -= DECLINE_COST;
          this.stats.retransmitsDeclined++;
        } else {
          this.#tokens--;
          this.#retransmit(seq, nowMs);
        }
        done = k;
      }
    }
  }

  /** Tokens accrue at the stream's packet rate (or the floor), up to the packets in flight. */
  #refill(nowMs: number): void {
    const perSecond = Math.max(MIN_REXMIT_PER_SECOND, this.#packetsPerSecond);
    const burst = Math.max(MIN_REXMIT_BURST, this.unacknowledged);
    const elapsed = Number.isFinite(this.#tokensAtMs) ? nowMs - this.#tokensAtMs : 0;
    this.#tokens = Math.min(burst, this.#tokens + (elapsed * perSecond) / 1000);
    this.#tokensAtMs = nowMs;
  }

  /** Part of a NAKed range was given up: tell the receiver to stop asking for it. */
  #dropRequest(first: number, last: number, nowMs: number): void {
    if (seqOffset(this.#ackSeq, first) < 0) first = this.#ackSeq;
    if (seqOffset(first, last) < 0) return;
    this.#link.send(
      dropRequestPacket(
        { msgNo: 0, first, last },
        this.#link.timestamp(nowMs),
        this.#link.peerSocketId,
      ),
    );
    this.stats.dropRequests++;
  }

  /** Timers: give up old packets, resend what was reported lost, and a lost tail. */
  tick(nowMs: number): void {
    const slots = this.#slots;
    while (
      this.#base !== this.#next && nowMs - slots.time[slots.index(this.#base)] > this.#keepMs
    ) {
      this.#base = seqAdd(this.#base, 1);
      this.stats.dropped++;
    }
    this.#repairLosses(nowMs);
    const quiet = Math.max(TAIL_QUIET_MS, this.rtt.timeoutMs + 20);
    if (
      this.#base !== this.#next && !this.#link.backedUp() && nowMs - this.#lastSendMs > quiet &&
      nowMs - this.#lastAckMs > quiet && nowMs - this.#lastTailMs > quiet
    ) {
      this.#lastTailMs = nowMs;
      const n = Math.min(this.unacknowledged, TAIL_RETRANSMIT_PACKETS);
      for (let k = 0; k < n; k++) this.#retransmit(seqAdd(this.#base, k), nowMs, false);
    }
  }

  /** Make room for the packet `#next`: grow, or give up the oldest packet. */
  #open(): void {
    while (seqOffset(this.#base, this.#next) >= this.#slots.capacity - 1) {
      if (this.#slots.capacity < this.#maxPackets) {
        this.#slots.grow(this.#base, seqOffset(this.#base, this.#next));
      } else {
        this.#base = seqAdd(this.#base, 1);
        this.stats.dropped++;
      }
    }
  }

  #finish(nowMs: number): void {
    const slots = this.#slots;
    const i = slots.index(this.#next);
    const at = i * slots.slotSize;
    const buf = slots.data;
    writeU32(buf, at, this.#next);
    writeU32(buf, at + 4, SOLO_IN_ORDER | this.#msgNo);
    writeU32(buf, at + 8, this.#link.timestamp(nowMs));
    writeU32(buf, at + 12, this.#link.peerSocketId);
    const length = SRT_HEADER_SIZE + this.#fill;
    slots.length[i] = length;
    slots.time[i] = nowMs;
    this.stats.sent++;
    this.stats.bytes += this.#fill;
    if (nowMs - this.#rateStartMs >= RATE_WINDOW_MS) {
      if (Number.isFinite(this.#rateStartMs)) {
        this.#packetsPerSecond = (this.#rateSent * 1000) / (nowMs - this.#rateStartMs);
      }
      this.#rateStartMs = nowMs;
      this.#rateSent = 0;
    }
    this.#rateSent++;
    slots.mark[i] = -Infinity;
    this.#fill = 0;
    this.#next = seqAdd(this.#next, 1);
    this.#msgNo = (this.#msgNo & MSGNO_MASK) === MSGNO_MASK ? 1 : this.#msgNo + 1;
    this.#lastSendMs = nowMs;
    this.#link.send(buf.subarray(at, at + length));
  }

  /** Send `seq` again; `followUp`: until it is acknowledged (it was reported lost). */
  #retransmit(seq: number, nowMs: number, followUp = true): void {
    if (followUp && this.#lost.size < MAX_LOSS_LIST) this.#lost.add(seq);
    const slots = this.#slots;
    const at = slots.offset(seq);
    slots.data[at + 4] |= RETRANSMITTED;
    slots.mark[slots.index(seq)] = nowMs;
    this.stats.retransmitted++;
    this.#lastSendMs = nowMs;
    this.#link.send(slots.data.subarray(at, at + slots.length[slots.index(seq)]));
  }
}
