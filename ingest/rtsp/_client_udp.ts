/**
 * A pull client's UDP ports for one track: an even RTP port and the odd RTCP port above it
 * (RFC 3550 section 11), taking datagrams only from the server's address.
 *
 * @module
 */

import dgram from "node:dgram";

/** Receives one datagram; `data` may be kept (each datagram is its own buffer). */
export type DatagramHandler = (data: Uint8Array) => void;

/** Attempts at finding a free even/odd pair before giving up. */
const BIND_ATTEMPTS = 16;

/** The RTP/RTCP socket pair of one track. */
export class ClientUdpPorts {
  /** The even port RTP arrives on. */
  readonly rtpPort: number;
  /** The odd port RTCP arrives on (`rtpPort + 1`). */
  readonly rtcpPort: number;
  /** Datagrams from other addresses than the server's, dropped. */
  foreign = 0;
  /** The server's RTCP port once SETUP answered with `server_port`. */
  serverRtcpPort: number | undefined;
  #rtp: dgram.Socket;
  #rtcp: dgram.Socket;
  #server: string;

  private constructor(rtp: dgram.Socket, rtcp: dgram.Socket, server: string) {
    this.#rtp = rtp;
    this.#rtcp = rtcp;
    this.#server = server;
    this.rtpPort = rtp.address().port;
    this.rtcpPort = rtcp.address().port;
  }

  /** Bind a free even/odd pair on the wildcard address of the server's family. */
  static async open(server: string): Promise<ClientUdpPorts> {
    const family = server.includes(":") ? "udp6" : "udp4";
    let lastError: unknown;
    for (let i = 0; i < BIND_ATTEMPTS; i++) {
      const even = 2 * (10_000 + Math.floor(Math.random() * 22_000));
      let rtp: dgram.Socket | undefined;
      try {
        rtp = await bind(family, even);
        const rtcp = await bind(family, even + 1);
        return new ClientUdpPorts(rtp, rtcp, server);
      } catch (error) {
        lastError = error;
        rtp?.close();
      }
    }
    throw new Error(`no free UDP port pair: ${(lastError as Error).message}`);
  }

  /** Start handing on the server's datagrams; what a handler throws goes to `onError`. */
  listen(onRtp: DatagramHandler, onRtcp: DatagramHandler, onError: (error: Error) => void): void {
    const from = (handler: DatagramHandler) => (msg: Uint8Array, rinfo: dgram.RemoteInfo) => {
      if (rinfo.address !== this.#server && rinfo.address !== `::ffff:${this.#server}`) {
        this.foreign++;
        return;
      }
      try {
        handler(msg);
      } catch (error) {
        onError(error instanceof Error ? error : new Error(String(error)));
      }
    };
    this.#rtp.on("message", from(onRtp));
    this.#rtcp.on("message", from(onRtcp));
  }

  /** Send an RTCP packet to the server's RTCP port (when it said which). */
  sendRtcp(data: Uint8Array): void {
    if (this.serverRtcpPort === undefined) return;
    this.#rtcp.send(data, this.serverRtcpPort, this.#server);
  }

  /** Close both sockets (idempotent). */
  close(): void {
    for (const socket of [this.#rtp, this.#rtcp]) {
      try {
        socket.close();
      } catch {
        // already closed
      }
    }
  }
}

function bind(type: "udp4" | "udp6", port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(type);
    socket.once("error", (error) => {
      try {
        socket.close();
      } catch {
        // not bound
      }
      reject(error);
    });
    socket.bind(port, () => {
      socket.removeAllListeners("error");
      socket.on("error", () => {}); // a send to a closed port (ICMP) is not fatal
      resolve(socket);
    });
  });
}
