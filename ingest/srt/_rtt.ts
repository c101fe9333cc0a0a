/** Round-trip time estimation shared by the receiver (ACK/ACKACK) and the sender (ACK). */

/** Smoothed round-trip time and its variance, in microseconds. */
export class RttEstimator {
  /** Smoothed round-trip time (100 ms until the first sample, as libsrt assumes). */
  rttUs = 100_000;
  /** Round-trip time variance (50 ms until the first sample). */
  varUs = 50_000;
  #sampled = false;

  /** Fold in one measured round trip. */
  sample(us: number): void {
    if (!this.#sampled) {
      this.#sampled = true;
      this.rttUs = us;
      this.varUs = us / 2;
      return;
    }
    this.varUs = (3 * this.varUs + Math.abs(this.rttUs - us)) / 4;
    this.rttUs = (7 * this.rttUs + us) / 8;
  }

  /** Take the peer's estimate as is (the sender learns RTT from the receiver's ACKs). */
  adopt(rttUs: number, varUs: number): void {
    this.#sampled = true;
    this.rttUs = rttUs;
    this.varUs = varUs;
  }

  /** Whether a round trip has been measured or adopted (else the values are guesses). */
  get sampled(): boolean {
    return this.#sampled;
  }

  /** A retransmission timeout: RTT plus four deviations, in milliseconds. */
  get timeoutMs(): number {
    return (this.rttUs + 4 * this.varUs) / 1000;
  }
}
