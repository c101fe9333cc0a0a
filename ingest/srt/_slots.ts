/** The storage of the send and receive buffers: fixed-size packet slots found by sequence number. */

import { seqAdd } from "./packet.ts";

/**
 * `capacity` slots of `slotSize` bytes in one allocation, slot `seq & (capacity - 1)`
 * for sequence number `seq`, with a length, a 32-bit timestamp and a time per slot.
 * The capacity is a power of two and doubles on demand, so memory follows what is held.
 */
export class PacketSlots {
  /** Slots; a power of two. */
  capacity: number;
  /** Bytes per slot. */
  readonly slotSize: number;
  /** Slot bytes. */
  data: Uint8Array;
  /** Per slot: bytes used, or a negative marker of the owner's. */
  length: Int32Array;
  /** Per slot: a packet timestamp. */
  stamp: Uint32Array;
  /** Per slot: a local time in ms. */
  time: Float64Array;
  /** Per slot: a second local time in ms, for the owner's use (-Infinity when unset). */
  mark: Float64Array;
  readonly #empty: number;

  /** Make `capacity` slots (a power of two) whose lengths start as `empty`. */
  constructor(capacity: number, slotSize: number, empty: number) {
    this.capacity = capacity;
    this.slotSize = slotSize;
    this.#empty = empty;
    this.data = new Uint8Array(capacity * slotSize);
    this.length = new Int32Array(capacity).fill(empty);
    this.stamp = new Uint32Array(capacity);
    this.time = new Float64Array(capacity);
    this.mark = new Float64Array(capacity).fill(-Infinity);
  }

  /** The slot of `seq`. */
  index(seq: number): number {
    return seq & (this.capacity - 1);
  }

  /** The byte offset of `seq`'s slot in {@linkcode PacketSlots.data}. */
  offset(seq: number): number {
    return (seq & (this.capacity - 1)) * this.slotSize;
  }

  /** Double the capacity, keeping the `count` slots from sequence number `first` on. */
  grow(first: number, count: number): void {
    const capacity = this.capacity * 2;
    const data = new Uint8Array(capacity * this.slotSize);
    const length = new Int32Array(capacity).fill(this.#empty);
    const stamp = new Uint32Array(capacity);
    const time = new Float64Array(capacity);
    const mark = new Float64Array(capacity).fill(-Infinity);
    for (let k = 0; k < count; k++) {
      const seq = seqAdd(first, k);
      const from = this.index(seq);
      const to = seq & (capacity - 1);
      data.set(
        this.data.subarray(from * this.slotSize, (from + 1) * this.slotSize),
        to * this.slotSize,
      );
      length[to] = this.length[from];
      stamp[to] = this.stamp[from];
      time[to] = this.time[from];
      mark[to] = this.mark[from];
    }
    this.capacity = capacity;
    this.data = data;
    this.length = length;
    this.stamp = stamp;
    this.time = time;
    this.mark = mark;
  }
}
