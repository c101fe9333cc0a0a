/**
 * What a receiver reports about one RTP source (RFC 3550 appendix A.1, A.3, A.8): packets
 * received and lost, the highest sequence number, interarrival jitter, and the last sender
 * report, for the receiver reports a pull client sends over UDP.
 *
 * @module
 */

import type { ReceptionReport, SenderReport } from "../../media/rtp/rtcp.ts";

/** Reception statistics of one track's RTP stream. */
export class ReceptionStats {
  readonly #clockRate: number;
  #ssrc: number | undefined;
  #baseSequence = 0;
  #maxSequence = 0;
  #cycles = 0;
  #received = 0;
  #expectedPrior = 0;
  #receivedPrior = 0;
  #transit: number | undefined;
  #jitter = 0;
  #lastSenderReport = 0;
  #senderReportAtMs = 0;

  constructor(clockRate: number) {
    this.#clockRate = clockRate;
  }

  /** Packets received from the current source. */
  get received(): number {
    return this.#received;
  }

  /** One RTP packet (at least 12 bytes, parsed already) arrived at `nowMs`. */
  packet(bytes: Uint8Array, nowMs: number): void {
    const sequence = (bytes[2] << 8) | bytes[3];
    const timestamp = ((bytes[4] << 24) | (bytes[5] << 16) | (bytes[6] << 8) | bytes[7]) >>> 0;
    const ssrc = ((bytes[8] << 24) | (bytes[9] << 16) | (bytes[10] << 8) | bytes[11]) >>> 0;
    if (this.#ssrc !== ssrc) {
      this.#ssrc = ssrc;
      this.#baseSequence = this.#maxSequence = sequence;
      this.#cycles =
        this.#received =
        this.#expectedPrior =
        this.#receivedPrior =
          0;
      this.#transit = undefined;
      this.#jitter = 0;
    }
    this.#received++;
    const delta = (sequence - this.#maxSequence) & 0xffff;
    if (delta > 0 && delta < 0x8000) {
      if (sequence < this.#maxSequence) this.#cycles += 0x10000;
      this.#maxSequence = sequence;
    }
    const arrival = Math.round(nowMs * this.#clockRate / 1000);
    const transit = (arrival - timestamp) | 0;
    if (this.#transit !== undefined) {
      const d = Math.abs((transit - this.#transit) | 0);
      this.#jitter += (d - this.#jitter) / 16;
    }
    this.#transit = transit;
  }

  /** A sender report of this source arrived at `nowMs`. */
  senderReport(report: SenderReport, nowMs: number): void {
    this.#lastSenderReport = Math.floor(report.ntpSeconds * 65536) % 2 ** 32;
    this.#senderReportAtMs = nowMs;
  }

  /** The report block for a receiver report sent at `nowMs`; undefined before any packet. */
  report(nowMs: number): ReceptionReport | undefined {
    if (this.#ssrc === undefined) return undefined;
    const highest = this.#cycles + this.#maxSequence;
    const expected = highest - this.#baseSequence + 1;
    const expectedInterval = expected - this.#expectedPrior;
    const receivedInterval = this.#received - this.#receivedPrior;
    this.#expectedPrior = expected;
    this.#receivedPrior = this.#received;
    const lostInterval = expectedInterval - receivedInterval;
    const fractionLost = expectedInterval <= 0 || lostInterval <= 0
      ? 0
      : Math.floor((lostInterval * 256) / expectedInterval);
    const sinceReport = this.#lastSenderReport === 0
      ? 0
      : Math.round((nowMs - this.#senderReportAtMs) * 65.536);
    return {
      ssrc: this.#ssrc,
      fractionLost: Math.min(255, fractionLost),
      cumulativeLost: expected - this.#received,
      highestSequence: highest % 2 ** 32,
      jitter: Math.round(this.#jitter),
      lastSenderReport: this.#lastSenderReport,
      delaySinceLastSenderReport: sinceReport,
    };
  }
}
