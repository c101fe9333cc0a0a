/**
 * A bound UDP socket for the datagram protocols: Deno's own (`Deno.listenDatagram`, behind
 * the `net` unstable flag, which this repository's deno.json sets) when the runtime has it,
 * else `node:dgram`. Deno's costs less per datagram both ways (no Node compat layers, no
 * buffer per received datagram). Either way sends go out in order through a bounded
 * queue (`_udp_send_queue.ts`) and each received datagram is handed to one callback.
 */

import { openDenoUdpSocket } from "./_udp_deno.ts";
import { openNodeUdpSocket } from "./_udp_node.ts";

/** Where a datagram goes: made once per peer, so that sending allocates nothing. */
export type UdpAddress = Deno.NetAddr;

/** Which implementation carries a {@linkcode UdpSocket}. */
export type UdpRuntime = "deno" | "node";

/** Options for {@linkcode openUdpSocket}. */
export interface UdpSocketOptions {
  /** The address to bind to (an IPv6 address binds an IPv6 socket). */
  readonly hostname: string;
  /** The port; 0 picks a free one (see {@linkcode UdpSocket.addr}). */
  readonly port: number;
  /** The most datagrams waiting to be sent; a send beyond that is dropped. */
  readonly maxQueue: number;
  /**
   * Each datagram received, with its sender's address. `datagram` is a view valid only
   * during the call (copy what is kept); what the callback throws goes to `onError`.
   */
  readonly onDatagram: (datagram: Uint8Array, hostname: string, port: number) => void;
  /** A failed receive, or what `onDatagram` threw. */
  readonly onError: (error: Error) => void;
  /** The implementation (default: Deno's when the runtime has it, else `node:dgram`). */
  readonly runtime?: UdpRuntime;
}

/** A bound UDP socket. */
export interface UdpSocket {
  /** The address it is bound to. */
  readonly addr: Deno.NetAddr;
  /** The implementation that carries it. */
  readonly runtime: UdpRuntime;
  /**
   * Send `datagram` after every datagram sent before it (the socket may still read it
   * until it goes out); false when the send queue is full and it was dropped.
   */
  send(datagram: Uint8Array, to: UdpAddress): boolean;
  /**
   * Whether more than a quarter of the send queue is waiting: sends are asked for faster
   * than they go out, and what is sent now waits behind them.
   */
  readonly backedUp: boolean;
  /** Let what is queued go out for at most `drainMs` (default 0), then close. */
  close(drainMs?: number): Promise<void>;
}

/** Bind a UDP socket; rejects when the address cannot be bound. */
export async function openUdpSocket(options: UdpSocketOptions): Promise<UdpSocket> {
  const hasDeno = typeof (Deno as { listenDatagram?: unknown }).listenDatagram === "function";
  const runtime = options.runtime ?? (hasDeno ? "deno" : "node");
  return runtime === "deno" ? openDenoUdpSocket(options) : await openNodeUdpSocket(options);
}

/** The address `hostname:port`, for {@linkcode UdpSocket.send}. */
export function udpAddress(hostname: string, port: number): UdpAddress {
  return { transport: "udp", hostname, port };
}
