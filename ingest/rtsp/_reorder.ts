/**
 * Putting RTP packets received over UDP back in sequence order.
 *
 * @module
 */

/** Options for {@linkcode RtpReorderer}. */
export interface ReorderOptions {
  /** Packets held at most while a missing one is awaited; a power of two (default 64). */
  size?: number;
  /** How long a missing packet is awaited before it is given up, in ms (default 100). */
  maxWaitMs?: number;
  /** Monotonic milliseconds (default `performance.now`). */
  clock?: () => number;
}

/**
 * Hands on one RTP stream's packets in sequence-number order. UDP may deliver them out of
 * order: a packet that arrives ahead of a missing one is held until the missing one comes, or
 * until `maxWaitMs` has passed (the gap is then given up). A packet `size` or more ahead of
 * the missing one ends the wait at once. Duplicates and packets older than ones already handed
 * on are dropped; the first packet sets the order, so one sent before it and arriving after it
 * is dropped too. A datagram too short to be RTP is handed on at once for the parser to refuse.
 */
export class RtpReorderer {
  /** Packets dropped: duplicates, and packets that came after later ones were handed on. */
  dropped = 0;
  #deliver: (packet: Uint8Array) => void;
  #slots: (Uint8Array | undefined)[];
  #mask: number;
  #maxWaitMs: number;
  #clock: () => number;
  /** The sequence number to hand on next; -1 before the first packet. */
  #next = -1;
  #held = 0;
  /** When the current gap started to hold packets back. */
  #waitingSince = 0;

  /** Reorder packets into `deliver`. */
  constructor(deliver: (packet: Uint8Array) => void, options: ReorderOptions = {}) {
    const size = options.size ?? 64;
    if (!Number.isInteger(Math.log2(size)) || size < 2 || size > 0x8000) {
      throw new RangeError(`the reorder size must be a power of two from 2 to 32768, got ${size}`);
    }
    this.#deliver = deliver;
    this.#slots = new Array(size).fill(undefined);
    this.#mask = size - 1;
    this.#maxWaitMs = options.maxWaitMs ?? 100;
    this.#clock = options.clock ?? (() => performance.now());
  }

  /** Packets held back now. */
  get held(): number {
    return this.#held;
  }

  /** Take one datagram. */
  push(packet: Uint8Array): void {
    if (packet.length < 12) return this.#deliver(packet);
    const sequence = (packet[2] << 8) | packet[3];
    if (this.#next < 0) this.#next = sequence;
    const ahead = (sequence - this.#next) & 0xffff;
    if (ahead >= 0x8000) {
      this.dropped++; // behind what was handed on: late, or a duplicate
      return;
    }
    if (ahead > this.#mask) this.#skipTo(sequence); // too far ahead to wait for the gap
    if (sequence === this.#next) {
      this.#deliver(packet);
      this.#next = (sequence + 1) & 0xffff;
      this.#drain();
    } else {
      const slot = sequence & this.#mask;
      if (this.#slots[slot] !== undefined) {
        this.dropped++; // already held
        return;
      }
      this.#slots[slot] = packet;
      if (this.#held++ === 0) this.#waitingSince = this.#clock();
    }
    if (this.#held > 0 && this.#clock() - this.#waitingSince > this.#maxWaitMs) this.#giveUpGap();
  }

  /** Hand on the held packets that now follow in sequence. */
  #drain(): void {
    const slots = this.#slots;
    let packet: Uint8Array | undefined;
    while (this.#held > 0 && (packet = slots[this.#next & this.#mask]) !== undefined) {
      slots[this.#next & this.#mask] = undefined;
      this.#held--;
      this.#deliver(packet);
      this.#next = (this.#next + 1) & 0xffff;
    }
    if (this.#held > 0) this.#waitingSince = this.#clock();
  }

  /** Give up every packet before `sequence`, handing on the held ones among them in order. */
  #skipTo(sequence: number): void {
    // Held packets lie within one window from #next: no need to walk a longer jump.
    const steps = Math.min((sequence - this.#next) & 0xffff, this.#slots.length);
    for (let i = 0; i < steps && this.#held > 0; i++) {
      const slot = (this.#next + i) & this.#mask;
      const packet = this.#slots[slot];
      if (packet === undefined) continue;
      this.#slots[slot] = undefined;
      this.#held--;
      this.#deliver(packet);
    }
    this.#next = sequence;
    this.#drain();
  }

  /** The awaited packet took too long: go on from the first held one. */
  #giveUpGap(): void {
    let sequence = this.#next;
    while (this.#slots[sequence & this.#mask] === undefined) sequence = (sequence + 1) & 0xffff;
    this.#skipTo(sequence);
  }
}
