/**
 * Publishing to an SRT listener (another server's `publish:` stream, a restreaming
 * service, srt-live-transmit): the caller's handshake, then frames muxed into MPEG-TS and
 * sent with the sender's retransmission buffer.
 *
 * @module
 */

import { type Logger, type MediaFrame, silentLogger } from "../../mod.ts";
import { type CallerSession, callSrt } from "./_caller.ts";
import type { SenderStats } from "./_sender.ts";
import { SrtError } from "./error.ts";
import { parseSrtUrl } from "./url.ts";

/** Options for {@linkcode SrtPublisher.connect}. */
export interface SrtPublisherOptions {
  /**
   * Deadline of each handshake step, and the longest silence of the listener (not even a
   * keep-alive) before the connection is given up, in ms (default 10,000).
   */
  timeoutMs?: number;
  /** Where the connection logs (default: silent). */
  logger?: Logger;
  /** Gives up the handshake (the connect rejects) or, once connected, closes at once. */
  signal?: AbortSignal;
}

/** A closing publisher waits this long at most, beyond the playout, for its last ACKs. */
const LINGER_MS = 1000;
/** Beyond the latency, for the last packet's trip and the listener's delivery tick. */
const PLAYOUT_MARGIN_MS = 50;

/**
 * One publish to an SRT listener. {@linkcode SrtPublisher.connect} resolves once the
 * listener accepted the Stream ID (`srt://HOST:PORT?streamid=publish:live/cam`, with
 * `passphrase`, `pbkeylen` and `latency` as srt-live-transmit takes them) and rejects with
 * the listener's reason otherwise; {@linkcode SrtPublisher.write} sends frames (configs
 * first, as the kernel gives them), muxed once into MPEG-TS, kept until acknowledged and
 * retransmitted on loss within the latency; {@linkcode SrtPublisher.closed} resolves with
 * why the connection ended.
 *
 * @example
 * ```ts ignore
 * import { SrtPublisher } from "@arcly/stream/srt";
 *
 * const out = await SrtPublisher.connect("srt://127.0.0.1:8890?streamid=publish:live/copy");
 * for await (const frame of handle.subscribe({ replay: true })) await out.write(frame);
 * out.close();
 * ```
 */
export class SrtPublisher {
  readonly #session: CallerSession;
  readonly #closed: Promise<string>;
  #endReason: string | undefined;
  #closing = false;

  private constructor(session: CallerSession) {
    this.#session = session;
    this.#closed = session.ended.then((end) => {
      this.#endReason = end.why;
      return end.why;
    });
  }

  /**
   * Connect to `url` and start publishing.
   *
   * @throws {SrtError} (rejects) when the listener refuses (its reason as `reason`) or does
   * not answer within the timeout; {@linkcode RangeError} for an unusable URL.
   */
  static async connect(
    url: string | URL,
    options: SrtPublisherOptions = {},
  ): Promise<SrtPublisher> {
    const target = parseSrtUrl(url);
    const session = await callSrt(target, { kind: "write" }, {
      timeoutMs: options.timeoutMs ?? 10_000,
      logger: options.logger ?? silentLogger,
      signal: options.signal,
    });
    return new SrtPublisher(session);
  }

  /** Resolves with why the connection ended (the listener shut it down, went silent, close()). */
  get closed(): Promise<string> {
    return this.#closed;
  }

  /** Counters of the sending engine (packets sent, retransmitted, dropped). */
  stats(): SenderStats {
    return { ...this.#session.connection.stats.sender! };
  }

  /** Send one frame; rejects once the connection has ended or is closing. */
  write(frame: MediaFrame): Promise<void> {
    const connection = this.#session.connection;
    if (connection.closed || this.#closing) {
      return Promise.reject(
        new SrtError(`publish ended: ${this.#endReason ?? (this.#closing ? "closed" : "ended")}`),
      );
    }
    connection.write(frame);
    return Promise.resolve();
  }

  /**
   * End the publish: what is buffered is sent, and once it is acknowledged and the
   * listener has had its latency to play it out (a second beyond that at most), the
   * listener gets a SHUTDOWN. Idempotent.
   */
  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    const connection = this.#session.connection;
    connection.flushWrites();
    const playedOut = performance.now() + this.#session.sendLatencyMs + PLAYOUT_MARGIN_MS;
    const until = playedOut + LINGER_MS;
    const linger = () => {
      if (connection.closed) return;
      const now = performance.now();
      if (now < until && (connection.unacknowledged > 0 || now < playedOut)) {
        return void setTimeout(linger, 10);
      }
      connection.close("closed", "info");
    };
    linger();
  }
}
