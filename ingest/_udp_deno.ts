/**
 * {@linkcode UdpSocket} on `Deno.listenDatagram`: one receive in flight into one buffer
 * the socket keeps (a datagram costs no buffer of its own), sends one at a time.
 */

import type { UdpAddress, UdpSocket, UdpSocketOptions } from "./_udp_socket.ts";
import { UdpSendQueue } from "./_udp_send_queue.ts";

/** The largest UDP payload: a datagram is never cut short. */
const MAX_DATAGRAM = 65_535;

/** What this file uses of `Deno.DatagramConn` (typed here: the API is unstable). */
interface DatagramConn {
  receive(buffer: Uint8Array): Promise<[Uint8Array, Deno.Addr]>;
  send(datagram: Uint8Array, to: Deno.Addr): Promise<number>;
  close(): void;
  readonly addr: Deno.Addr;
}

type ListenDatagram = (
  options: { transport: "udp"; hostname: string; port: number },
) => DatagramConn;

/**
 * Bind with `Deno.listenDatagram`.
 *
 * @throws {Error} when the runtime has no `Deno.listenDatagram` or the address cannot be
 * bound.
 */
export function openDenoUdpSocket(options: UdpSocketOptions): UdpSocket {
  const listen = (Deno as { listenDatagram?: ListenDatagram }).listenDatagram;
  if (!listen) throw new Error("Deno.listenDatagram needs Deno's net unstable flag");
  const conn = listen({ transport: "udp", hostname: options.hostname, port: options.port });
  return new DenoUdpSocket(conn, options);
}

class DenoUdpSocket implements UdpSocket {
  readonly addr: Deno.NetAddr;
  readonly runtime = "deno";
  readonly #conn: DatagramConn;
  readonly #queue: UdpSendQueue;
  #closing?: Promise<void>;
  #closed = false;

  constructor(conn: DatagramConn, options: UdpSocketOptions) {
    this.#conn = conn;
    this.addr = conn.addr as Deno.NetAddr;
    this.#queue = new UdpSendQueue((datagram, to, done) => {
      try {
        conn.send(datagram, to).then(done, done);
      } catch {
        queueMicrotask(done);
      }
    }, options.maxQueue);
    void this.#receive(options);
  }

  send(datagram: Uint8Array, to: UdpAddress): boolean {
    return this.#queue.send(datagram, to);
  }

  get backedUp(): boolean {
    return this.#queue.backedUp;
  }

  close(drainMs = 0): Promise<void> {
    this.#closing ??= this.#queue.drain(drainMs).then(() => {
      this.#closed = true;
      this.#queue.stop();
      this.#conn.close();
    });
    return this.#closing;
  }

  async #receive({ onDatagram, onError }: UdpSocketOptions): Promise<void> {
    const buffer = new Uint8Array(MAX_DATAGRAM);
    for (;;) {
      let datagram: Uint8Array;
      let from: Deno.Addr;
      try {
        [datagram, from] = await this.#conn.receive(buffer);
      } catch (error) {
        if (this.#closed || error instanceof Deno.errors.BadResource) return;
        // Other receive errors (an ICMP error some systems report) leave the socket usable.
        onError(error instanceof Error ? error : new Error(String(error)));
        continue;
      }
      if (this.#closed) return;
      const { hostname, port } = from as Deno.NetAddr;
      try {
        onDatagram(datagram, hostname, port);
      } catch (error) {
        onError(error instanceof Error ? error : new Error(String(error)));
      }
    }
  }
}
