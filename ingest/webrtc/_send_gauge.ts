/**
 * How many UDP sends of one WebRTC peer are still in flight, so that a viewer's packets wait
 * in the stream's ring (where a viewer that stays behind skips ahead or is evicted) instead of
 * in the socket's send queue.
 *
 * werift (0.25.2) gives no back-pressure: its UDP transport hands a packet to `node:dgram`'s
 * `send` without waiting for it (no callback for an IP address), so every `sendRtp` resolves
 * at once. When the server falls behind (more viewers than a core can encrypt for), Deno's
 * `node:dgram` keeps every send it was given pending, each with its encrypted copy: measured
 * at 240 viewers on one core, 154,000 pending sends and 300 MiB of their buffers within half a
 * minute, and growing. The gauge wraps the `send` of each socket under the peer's ICE
 * connections (werift's `RTCIceTransport.connection.protocols[].transport.socket`, found at
 * construction) to count sends from their start to their callback.
 *
 * @module
 */

import type { RTCPeerConnection } from "werift";

/** The part of a `node:dgram` socket the gauge wraps. */
interface DatagramSocket {
  send(...args: unknown[]): void;
}

/** The path from a werift peer to its UDP sockets (private in werift's types). */
interface IcePeer {
  iceTransports?: { connection?: { protocols?: { transport?: { socket?: unknown } }[] } }[];
}

/** Counts one peer's UDP sends in flight and says when they have drained. */
export class UdpSendGauge {
  #inFlight = 0;
  #lowWater = 0;
  #drained: PromiseWithResolvers<void> | undefined;

  /**
   * Count the sends of every UDP socket under `pc`'s ICE transports. Throws when werift has
   * none where this version keeps them (a werift this code was not written against).
   */
  constructor(pc: RTCPeerConnection) {
    const sockets = new Set<DatagramSocket>();
    for (const ice of (pc as unknown as IcePeer).iceTransports ?? []) {
      for (const protocol of ice.connection?.protocols ?? []) {
        const socket = protocol.transport?.socket as DatagramSocket | undefined;
        if (typeof socket?.send === "function") sockets.add(socket);
      }
    }
    if (sockets.size === 0) throw new Error("this werift peer has no UDP socket to count sends on");
    for (const socket of sockets) this.#wrap(socket);
  }

  /** Sends started and not yet called back. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Settles once at most `lowWater` sends are in flight (at once when that is so already);
   * one promise however many wait, until it settles.
   */
  drained(lowWater: number): Promise<void> {
    if (this.#inFlight <= lowWater) return Promise.resolve();
    this.#lowWater = lowWater;
    this.#drained ??= Promise.withResolvers();
    return this.#drained.promise;
  }

  /**
   * Replace `socket.send` with one that counts each send until its callback. werift's form,
   * `send(data, port, address)`, gets the gauge's own callback: nothing is allocated per
   * send. Any other form (a callback of the caller's, an offset and length) is passed on
   * with a callback that calls the caller's after counting.
   */
  #wrap(socket: DatagramSocket): void {
    const send = socket.send.bind(socket);
    socket.send = (
      a?: unknown,
      b?: unknown,
      c?: unknown,
      d?: unknown,
      e?: unknown,
      f?: unknown,
    ) => {
      this.#inFlight++;
      try {
        if (typeof c === "string" && d === undefined) return send(a, b, c, this.#onSent);
        const args = [a, b, c, d, e, f];
        while (args.length > 0 && args.at(-1) === undefined) args.pop();
        const callback = typeof args.at(-1) === "function"
          ? args.pop() as (error: unknown) => void
          : undefined;
        send(...args, (error: unknown) => {
          this.#onSent();
          callback?.(error);
        });
      } catch (error) {
        this.#onSent();
        throw error;
      }
    };
  }

  #onSent = (): void => {
    this.#inFlight--;
    const drained = this.#drained;
    if (drained === undefined || this.#inFlight > this.#lowWater) return;
    this.#drained = undefined;
    drained.resolve();
  };
}
