/**
 * Ordered sends on one UDP socket. Neither of Deno's UDP APIs keeps datagrams in order
 * while several sends are in flight: `DatagramConn.send` and `node:dgram` both put the
 * sends issued in one turn on the wire last first (tests/ingest/udp_socket_test.ts shows
 * it). A receiver that takes a reordered packet for a loss reports it and has it
 * sent again, so one send is in flight at a time and the rest wait, in order, in a bounded
 * ring: a send that finds it full is dropped, as the wire would drop it.
 */

import type { UdpAddress } from "./_udp_socket.ts";

/**
 * Sends one datagram, then calls `done` once it went out or failed (a failed send is a
 * datagram lost, as on the wire).
 */
export type SendOne = (datagram: Uint8Array, to: UdpAddress, done: () => void) => void;

const INITIAL_CAPACITY = 64;

/** A socket's send queue: one send in flight, at most `maxQueue` waiting behind it. */
export class UdpSendQueue {
  readonly #sendOne: SendOne;
  readonly #maxQueue: number;
  /** The ring of waiting sends: datagrams and where they go, `#count` from `#head` on. */
  #datagrams: (Uint8Array | undefined)[] = new Array(INITIAL_CAPACITY);
  #targets: (UdpAddress | undefined)[] = new Array(INITIAL_CAPACITY);
  #head = 0;
  #count = 0;
  #inFlight = false;
  #stopped = false;
  #idle: (() => void)[] = [];

  /** Send with `sendOne`, holding at most `maxQueue` datagrams back. */
  constructor(sendOne: SendOne, maxQueue: number) {
    this.#sendOne = sendOne;
    this.#maxQueue = maxQueue;
  }

  /**
   * Send `datagram` to `to` after everything queued before it; false when the queue is
   * full (the datagram is dropped). Once stopped, sends nothing (and says true).
   */
  send(datagram: Uint8Array, to: UdpAddress): boolean {
    if (this.#stopped) return true;
    if (!this.#inFlight) {
      this.#inFlight = true;
      this.#sendOne(datagram, to, this.#next);
      return true;
    }
    if (this.#count >= this.#maxQueue) return false;
    if (this.#count === this.#datagrams.length) this.#grow();
    const at = (this.#head + this.#count++) & (this.#datagrams.length - 1);
    this.#datagrams[at] = datagram;
    this.#targets[at] = to;
    return true;
  }

  /**
   * Whether more than a quarter of the queue is waiting: the socket is asked to send
   * faster than it can, and what is sent now waits behind that.
   */
  get backedUp(): boolean {
    return this.#count > this.#maxQueue / 4;
  }

  /** Resolves once nothing is in flight or waiting, or after `ms`, whichever is first. */
  drain(ms: number): Promise<void> {
    if (!this.#inFlight) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#idle = this.#idle.filter((wake) => wake !== done);
        resolve();
      }, ms);
      this.#idle.push(done);
    });
  }

  /** Send nothing more; what waits is dropped. */
  stop(): void {
    this.#stopped = true;
    this.#datagrams.fill(undefined);
    this.#targets.fill(undefined);
    this.#count = 0;
  }

  #next = (): void => {
    if (this.#count === 0 || this.#stopped) {
      this.#inFlight = false;
      const idle = this.#idle;
      this.#idle = [];
      for (const wake of idle) wake();
      return;
    }
    const at = this.#head;
    const datagram = this.#datagrams[at]!;
    const to = this.#targets[at]!;
    this.#datagrams[at] = this.#targets[at] = undefined;
    this.#head = (at + 1) & (this.#datagrams.length - 1);
    this.#count--;
    this.#sendOne(datagram, to, this.#next);
  };

  /** Double the ring (a power of two), the waiting sends first, in order. */
  #grow(): void {
    const size = this.#datagrams.length;
    const datagrams: (Uint8Array | undefined)[] = new Array(size * 2);
    const targets: (UdpAddress | undefined)[] = new Array(size * 2);
    for (let k = 0; k < this.#count; k++) {
      datagrams[k] = this.#datagrams[(this.#head + k) & (size - 1)];
      targets[k] = this.#targets[(this.#head + k) & (size - 1)];
    }
    this.#datagrams = datagrams;
    this.#targets = targets;
    this.#head = 0;
  }
}
