/** A scripted SRT caller for listener tests: real UDP, our own codecs, every step explicit. */

import {
  ackPacket,
  ControlType,
  controlType,
  encodeHandshake,
  type Handshake,
  HandshakeExtensionFlag,
  HandshakeType,
  isControl,
  parseHandshake,
  SrtFlag,
} from "../../../ingest/srt/mod.ts";
import { bound } from "./_util.ts";
import { type UdpAddress, udpAddress, type UdpSocket } from "../../../ingest/_udp_socket.ts";
import { concat } from "../../_util/bytes.ts";

/** What a reader got: its MPEG-TS, and when (`performance.now()`) its data and SHUTDOWN came. */
export interface ReadTs {
  /** Every data payload, each sequence number once (retransmissions skipped), in order. */
  readonly ts: Uint8Array;
  readonly lastDataMs: number;
  readonly shutdownMs: number;
}

/** Flags libsrt 1.5 callers send in HSREQ. */
export const CALLER_FLAGS = SrtFlag.TSBPDSND | SrtFlag.TSBPDRCV | SrtFlag.HAICRYPT |
  SrtFlag.TLPKTDROP | SrtFlag.NAKREPORT | SrtFlag.REXMITFLG | SrtFlag.PACKET_FILTER;

/** One caller socket talking to a listener on 127.0.0.1. */
export class TestCaller {
  /** Our socket id. */
  readonly socketId: number = 1 + Math.floor(Math.random() * 0x3fffffff);
  /** The first data sequence number we announce. */
  readonly isn: number = Math.floor(Math.random() * 0x7fffffff);
  #socket!: UdpSocket;
  readonly #server: UdpAddress;
  readonly #inbox: Uint8Array[] = [];
  #waiter?: () => void;

  private constructor(serverPort: number) {
    this.#server = udpAddress("127.0.0.1", serverPort);
  }

  /** A caller on a fresh local port. */
  static async open(serverPort: number): Promise<TestCaller> {
    const caller = new TestCaller(serverPort);
    caller.#socket = await bound("127.0.0.1", (msg) => {
      caller.#inbox.push(msg);
      caller.#waiter?.();
    });
    return caller;
  }

  /** Our local UDP port. */
  get port(): number {
    return this.#socket.addr.port;
  }

  /** Send raw bytes to the listener. */
  send(packet: Uint8Array): void {
    this.#socket.send(packet, this.#server);
  }

  /** The next packet matching `match` (taken out of the inbox); rejects after `ms`. */
  async next(match: (packet: Uint8Array) => boolean, ms = 3000): Promise<Uint8Array> {
    const until = performance.now() + ms;
    for (;;) {
      const at = this.#inbox.findIndex(match);
      if (at >= 0) return this.#inbox.splice(at, 1)[0];
      const left = until - performance.now();
      if (left <= 0) throw new Error(`no matching packet within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.#waiter = done;
      });
    }
  }

  /** Whether a packet matching `match` arrives within `ms`. */
  async receives(match: (packet: Uint8Array) => boolean, ms: number): Promise<boolean> {
    try {
      await this.next(match, ms);
      return true;
    } catch {
      return false;
    }
  }

  /** The next handshake packet. */
  async handshake(ms = 5000): Promise<Handshake> {
    return parseHandshake(await this.next((p) => isControl(p) && controlType(p) === 0, ms));
  }

  /** Our induction request, as ffmpeg sends it. */
  inductionPacket(): Uint8Array {
    return encodeHandshake(
      {
        version: 4,
        encryption: 0,
        extensionField: 2,
        isn: this.isn,
        mtu: 1500,
        flowWindow: 8192,
        type: HandshakeType.INDUCTION,
        socketId: this.socketId,
        cookie: 0,
        peerIp: "127.0.0.1",
      },
      1000,
      0,
    );
  }

  /** A version 5 conclusion with HSREQ and, unless `streamId` is undefined, a Stream ID. */
  conclusionPacket(
    cookie: number,
    streamId: string | undefined,
    extra: Partial<Handshake> = {},
  ): Uint8Array {
    return encodeHandshake(
      {
        version: 5,
        encryption: 0,
        extensionField: HandshakeExtensionFlag.HSREQ | HandshakeExtensionFlag.CONFIG,
        isn: this.isn,
        mtu: 1500,
        flowWindow: 8192,
        type: HandshakeType.CONCLUSION,
        socketId: this.socketId,
        cookie,
        peerIp: "127.0.0.1",
        hsreq: {
          version: 0x010501,
          flags: CALLER_FLAGS,
          receiverLatencyMs: 120,
          senderLatencyMs: 120,
        },
        streamId,
        ...extra,
      },
      2000,
      0,
    );
  }

  /**
   * Induction, then a conclusion; returns the listener's answer (accept or rejection).
   * Each request is repeated every 250 ms until answered, as libsrt does.
   */
  async connect(streamId: string | undefined, extra: Partial<Handshake> = {}): Promise<Handshake> {
    const induction = await this.request(this.inductionPacket());
    return await this.request(this.conclusionPacket(induction.cookie, streamId, extra));
  }

  /**
   * Send a handshake request every 250 ms until it is answered; the answer (to an
   * induction an induction, to a conclusion anything else; late duplicates are skipped).
   */
  async request(packet: Uint8Array): Promise<Handshake> {
    const induction = parseHandshake(packet).type === HandshakeType.INDUCTION;
    const answers = (p: Uint8Array) =>
      isControl(p) && controlType(p) === 0 &&
      (parseHandshake(p).type === HandshakeType.INDUCTION) === induction;
    for (let attempt = 0;; attempt++) {
      this.send(packet);
      try {
        return parseHandshake(await this.next(answers, 250));
      } catch (error) {
        if (attempt === 20) throw error;
      }
    }
  }

  /**
   * Read as a reader up to the listener's SHUTDOWN, acknowledging every data packet (so the
   * listener closes without waiting out its linger); rejects when `ms` pass without a packet.
   */
  async readTs(listenerSocket: number, ms = 5000): Promise<ReadTs> {
    const payloads = new Map<number, Uint8Array>();
    let ackNo = 1;
    let lastDataMs = NaN;
    for (;;) {
      const packet = await this.next(
        (p) => !isControl(p) || controlType(p) === ControlType.SHUTDOWN,
        ms,
      );
      if (isControl(packet)) break;
      lastDataMs = performance.now();
      const seq = new DataView(packet.buffer, packet.byteOffset).getUint32(0);
      if (!payloads.has(seq)) payloads.set(seq, packet.subarray(16));
      const ack = { ackNo: ackNo++, ackSeq: (seq + 1) & 0x7fffffff, rttUs: 1000, rttVarUs: 500 };
      this.send(ackPacket(ack, 0, listenerSocket));
    }
    const shutdownMs = performance.now();
    const fromIsn = (seq: number) => (seq - this.isn) & 0x7fffffff;
    const inOrder = [...payloads].sort(([a], [b]) => fromIsn(a) - fromIsn(b));
    return { ts: concat(inOrder.map(([, payload]) => payload)), lastDataMs, shutdownMs };
  }

  /** Close the socket. */
  close(): Promise<void> {
    return this.#socket.close();
  }
}
