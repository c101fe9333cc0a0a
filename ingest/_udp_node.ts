/**
 * {@linkcode UdpSocket} on `node:dgram`, for runtimes without `Deno.listenDatagram` (Deno
 * without the `net` unstable flag): sends one at a time.
 */

import dgram from "node:dgram";
import type { UdpAddress, UdpSocket, UdpSocketOptions } from "./_udp_socket.ts";
import { UdpSendQueue } from "./_udp_send_queue.ts";

/** Bind with `node:dgram`; rejects when the address cannot be bound. */
export async function openNodeUdpSocket(options: UdpSocketOptions): Promise<UdpSocket> {
  const socket = dgram.createSocket(options.hostname.includes(":") ? "udp6" : "udp4");
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(options.port, options.hostname, () => {
      socket.off("error", reject);
      resolve();
    });
  });
  return new NodeUdpSocket(socket, options);
}

class NodeUdpSocket implements UdpSocket {
  readonly addr: Deno.NetAddr;
  readonly runtime = "node";
  readonly #socket: dgram.Socket;
  readonly #queue: UdpSendQueue;
  #closing?: Promise<void>;

  constructor(socket: dgram.Socket, { maxQueue, onDatagram, onError }: UdpSocketOptions) {
    this.#socket = socket;
    const bound = socket.address();
    this.addr = { transport: "udp", hostname: bound.address, port: bound.port };
    this.#queue = new UdpSendQueue((datagram, to, done) => {
      try {
        socket.send(datagram, to.port, to.hostname, done);
      } catch {
        queueMicrotask(done);
      }
    }, maxQueue);
    socket.on("message", (datagram: Uint8Array, from: dgram.RemoteInfo) => {
      try {
        onDatagram(datagram, from.address, from.port);
      } catch (error) {
        onError(error instanceof Error ? error : new Error(String(error)));
      }
    });
    socket.on("error", onError);
  }

  send(datagram: Uint8Array, to: UdpAddress): boolean {
    return this.#queue.send(datagram, to);
  }

  get backedUp(): boolean {
    return this.#queue.backedUp;
  }

  close(drainMs = 0): Promise<void> {
    this.#closing ??= this.#queue.drain(drainMs).then(() => {
      this.#queue.stop();
      return new Promise<void>((resolve) => this.#socket.close(() => resolve()));
    });
    return this.#closing;
  }
}
