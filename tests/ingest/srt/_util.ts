/** Helpers for SRT tests: UDP sockets, and a UDP relay that loses packets. */

import { prng } from "../../_util/fuzz.ts";
import { makeFixture, sine, testsrc } from "../../_util/ffmpeg.ts";
import { openUdpSocket, udpAddress, type UdpSocket } from "../../../ingest/_udp_socket.ts";

/**
 * A UDP socket on a free port of `hostname` whose datagrams are copied to `onDatagram`
 * (they may be kept); it sends in order.
 */
export function bound(
  hostname: string,
  onDatagram: (datagram: Uint8Array, port: number) => void,
): Promise<UdpSocket> {
  return openUdpSocket({
    hostname,
    port: 0,
    maxQueue: 1 << 16,
    onDatagram: (datagram, _, port) => onDatagram(datagram.slice(), port),
    onError: (error) => {
      throw error;
    },
  });
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
  /** Packets dropped and forwarded, client to server and back. */
  readonly counts = { upDropped: 0, up: 0, downDropped: 0, down: 0 };
  #front!: UdpSocket;
  readonly #upstreams = new Map<number, Promise<UdpSocket>>();
  readonly #options: RelayOptions;
  readonly #drop: () => boolean;

  private constructor(options: RelayOptions) {
    this.#options = options;
    const rand = prng(options.seed);
    this.#drop = () => rand() < options.loss;
  }

  /** Open a relay towards `options.target`. */
  static async open(options: RelayOptions): Promise<LossyRelay> {
    const relay = new LossyRelay(options);
    relay.#front = await bound("127.0.0.1", (msg, port) => relay.#fromClient(msg, port));
    return relay;
  }

  /** Where clients connect. */
  get port(): number {
    return this.#front.addr.port;
  }

  #fromClient(msg: Uint8Array, client: number): void {
    void this.#upstream(client).then((up) => {
      if (this.#drop()) return void this.counts.upDropped++;
      this.counts.up++;
      this.#options.onDatagram?.(msg);
      up.send(msg, udpAddress("127.0.0.1", this.#options.target));
    });
  }

  #upstream(client: number): Promise<UdpSocket> {
    let up = this.#upstreams.get(client);
    if (!up) {
      const back = udpAddress("127.0.0.1", client);
      up = bound("127.0.0.1", (msg) => {
        if (this.#drop()) return void this.counts.downDropped++;
        this.counts.down++;
        this.#options.onDatagram?.(msg);
        this.#front.send(msg, back);
      });
      this.#upstreams.set(client, up);
    }
    return up;
  }

  /** Close every socket. */
  async close(): Promise<void> {
    const sockets = [this.#front, ...await Promise.all(this.#upstreams.values())];
    await Promise.all(sockets.map((socket) => socket.close()));
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
