/** Helpers for SRT tests: ordered UDP sends, and a UDP relay that loses packets. */

import dgram from "node:dgram";
import { prng } from "../../_util/fuzz.ts";
import { makeFixture, sine, testsrc } from "../../_util/ffmpeg.ts";

/** Sends on one UDP socket in order (Deno's node:dgram reorders sends issued together). */
export class OrderedSocket {
  readonly socket: dgram.Socket;
  #backlog: [Uint8Array, number, string][] = [];
  #busy = false;

  constructor(socket: dgram.Socket) {
    this.socket = socket;
  }

  send(packet: Uint8Array, port: number, address: string): void {
    this.#backlog.push([packet, port, address]);
    if (!this.#busy) this.#next();
  }

  #next = (): void => {
    const item = this.#backlog.shift();
    this.#busy = item !== undefined;
    if (item) this.socket.send(item[0], item[1], item[2], this.#next);
  };
}

export async function bound(hostname: string): Promise<OrderedSocket> {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, hostname, resolve));
  return new OrderedSocket(socket);
}

/** Options for {@linkcode LossyRelay.open}. */
export interface RelayOptions {
  /** The server's UDP port on 127.0.0.1. */
  target: number;
  /** Fraction of packets dropped in each direction, at random. */
  loss: number;
  /** PRNG seed of the drop decisions. */
  seed: number;
  /** Sees every datagram forwarded (what a capture on the wire would see). */
  onDatagram?: (datagram: Uint8Array) => void;
}

/**
 * A UDP relay on 127.0.0.1 in front of a server: each client gets its own upstream
 * socket, and every packet in either direction is dropped with probability `loss`.
 */
export class LossyRelay {
  /** Where clients connect. */
  readonly port: number;
  /** Packets dropped and forwarded, client to server and back. */
  readonly counts = { upDropped: 0, up: 0, downDropped: 0, down: 0 };
  readonly #front: OrderedSocket;
  readonly #upstreams = new Map<string, Promise<OrderedSocket>>();
  readonly #options: RelayOptions;
  readonly #drop: () => boolean;

  private constructor(front: OrderedSocket, options: RelayOptions) {
    this.#front = front;
    this.port = front.socket.address().port;
    this.#options = options;
    const rand = prng(options.seed);
    this.#drop = () => rand() < options.loss;
    front.socket.on("message", (msg: Uint8Array, rinfo: dgram.RemoteInfo) => {
      void this.#upstream(rinfo).then((up) => {
        if (this.#drop()) return void this.counts.upDropped++;
        this.counts.up++;
        this.#options.onDatagram?.(msg);
        up.send(msg, this.#options.target, "127.0.0.1");
      });
    });
  }

  /** Open a relay towards `options.target`. */
  static async open(options: RelayOptions): Promise<LossyRelay> {
    return new LossyRelay(await bound("127.0.0.1"), options);
  }

  #upstream(client: dgram.RemoteInfo): Promise<OrderedSocket> {
    const key = `${client.address}:${client.port}`;
    let up = this.#upstreams.get(key);
    if (!up) {
      up = bound("127.0.0.1").then((socket) => {
        socket.socket.on("message", (msg: Uint8Array) => {
          if (this.#drop()) return void this.counts.downDropped++;
          this.counts.down++;
          this.#options.onDatagram?.(msg);
          this.#front.send(msg, client.port, client.address);
        });
        return socket;
      });
      this.#upstreams.set(key, up);
    }
    return up;
  }

  /** Close every socket. */
  async close(): Promise<void> {
    const sockets = [this.#front, ...await Promise.all(this.#upstreams.values())];
    await Promise.all(
      sockets.map((s) => new Promise<void>((resolve) => s.socket.close(() => resolve()))),
    );
  }
}

/** A 3 s H.264 (one-second GOPs, 2 B-frames) + AAC clip in MPEG-TS, made once per process. */
export function srtClip(): Promise<string> {
  return makeFixture("srt-caller-clip.ts", [
    ...testsrc({ duration: 3 }),
    ...sine({ duration: 3 }),
    ...["-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-bf", "2", "-pix_fmt", "yuv420p"],
    ...["-c:a", "aac", "-f", "mpegts"],
  ]);
}
