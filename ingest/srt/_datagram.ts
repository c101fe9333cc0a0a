/**
 * Ordered sends on one UDP socket: Deno's `node:dgram` reorders sends issued in the same
 * turn, so one send is in flight at a time and the rest wait, in order, in a bounded queue.
 */

import type dgram from "node:dgram";

/** A socket's send queue. */
export class OrderedSender {
  readonly #socket: dgram.Socket;
  readonly #maxQueue: number;
  #queue: { packet: Uint8Array; port: number; address: string }[] = [];
  #head = 0;
  #sending = false;
  #stopped = false;

  /** Send on `socket`, holding at most `maxQueue` packets back. */
  constructor(socket: dgram.Socket, maxQueue: number) {
    this.#socket = socket;
    this.#maxQueue = maxQueue;
  }

  /** Whether a send is in flight (packets still wait to go out). */
  get busy(): boolean {
    return this.#sending;
  }

  /** Queue `packet` for `address:port`; false when the queue is full (the packet is dropped). */
  send(packet: Uint8Array, port: number, address: string): boolean {
    if (this.#stopped) return true;
    if (this.#queue.length - this.#head >= this.#maxQueue) return false;
    this.#queue.push({ packet, port, address });
    if (!this.#sending) this.#pump();
    return true;
  }

  /** Send nothing more (the socket is closing). */
  stop(): void {
    this.#stopped = true;
  }

  #pump = (): void => {
    if (this.#head === this.#queue.length || this.#stopped) {
      this.#queue.length = this.#head = 0;
      this.#sending = false;
      return;
    }
    this.#sending = true;
    const item = this.#queue[this.#head];
    this.#queue[this.#head++] = undefined!;
    try {
      this.#socket.send(item.packet, item.port, item.address, this.#pump);
    } catch {
      queueMicrotask(this.#pump);
    }
  };
}
