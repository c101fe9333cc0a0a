/**
 * The server's UDP port pair: one socket for RTP, one for RTCP, shared by every session.
 * Incoming datagrams are routed by their source address to the track that expects them.
 *
 * @module
 */

import dgram from "node:dgram";
import type { Logger } from "../../mod.ts";

/** Receives the datagrams from one client port. */
export type DatagramHandler = (data: Uint8Array) => void;

/** The bound RTP and RTCP sockets and the routes of incoming datagrams. */
export class UdpPair {
  readonly rtpPort: number;
  readonly rtcpPort: number;
  /** Datagrams from sources no session expects. */
  unrouted = 0;
  #rtp: dgram.Socket;
  #rtcp: dgram.Socket;
  #routes = new Map<string, DatagramHandler>();
  #pending = 0;
  #waiters: (() => void)[] = [];
  #onSent = () => {
    if (--this.#pending > 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  };

  private constructor(rtp: dgram.Socket, rtcp: dgram.Socket) {
    this.#rtp = rtp;
    this.#rtcp = rtcp;
    this.rtpPort = rtp.address().port;
    this.rtcpPort = rtcp.address().port;
    const route = (msg: Uint8Array, rinfo: dgram.RemoteInfo) => {
      const handler = this.#routes.get(`${rinfo.address}:${rinfo.port}`);
      if (handler) handler(msg);
      else this.unrouted++;
    };
    rtp.on("message", route);
    rtcp.on("message", route);
  }

  /** Bind both sockets. */
  static async open(
    hostname: string,
    rtpPort: number,
    rtcpPort: number,
    logger: Logger,
  ): Promise<UdpPair> {
    const rtp = await bind(hostname, rtpPort);
    let rtcp: dgram.Socket;
    try {
      rtcp = await bind(hostname, rtcpPort);
    } catch (error) {
      rtp.close();
      throw error;
    }
    for (const socket of [rtp, rtcp]) {
      socket.on("error", (error) => logger.warn(`rtsp: udp socket: ${error.message}`));
    }
    return new UdpPair(rtp, rtcp);
  }

  /** Send datagrams from `address:port` to `handler` until the returned function is called. */
  route(address: string, port: number, handler: DatagramHandler): () => void {
    const key = `${address}:${port}`;
    this.#routes.set(key, handler);
    return () => {
      if (this.#routes.get(key) === handler) this.#routes.delete(key);
    };
  }

  /** Queue a datagram from the RTP (or RTCP) socket. */
  send(rtcp: boolean, data: Uint8Array, port: number, address: string): void {
    this.#pending++;
    (rtcp ? this.#rtcp : this.#rtp).send(data, port, address, this.#onSent);
  }

  /** Resolves once every queued datagram has left (their buffers may then be reused). */
  drain(): Promise<void> {
    if (this.#pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Close both sockets. */
  close(): void {
    this.#routes.clear();
    for (const socket of [this.#rtp, this.#rtcp]) {
      try {
        socket.close();
      } catch {
        // already closed
      }
    }
  }
}

function bind(hostname: string, port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket("udp4");
    socket.once("error", reject);
    socket.bind(port, hostname, () => {
      socket.off("error", reject);
      resolve(socket);
    });
  });
}
