/**
 * Pulling a stream from an SRT listener: another server's `read:` stream, an encoder or
 * camera in listener mode, ffmpeg or srt-live-transmit with `mode=listener`.
 *
 * @module
 */

import { type MediaFrame, silentLogger } from "../../mod.ts";
import type { PullClient, PullOptions } from "../pull.ts";
import { callSrt } from "./_caller.ts";
import { SrtError } from "./error.ts";
import { parseSrtUrl } from "./url.ts";

/** How often the media silence is checked, as a share of the timeout. */
const SILENCE_CHECKS = 4;

/**
 * A {@linkcode PullClient} for `srt://HOST:PORT?streamid=read:live/cam`: calls the
 * listener (HSv5 handshake with the Stream ID, encrypted when the URL has a `passphrase`,
 * key length `pbkeylen` 16/24/32, receive latency `latency` in ms as srt-live-transmit
 * takes it, default 120), receives MPEG-TS with loss recovery (ACK, NAK, too-late drop),
 * demuxes it and hands the frames to `options.onFrame` (each track's media only after its
 * CONFIG). Resolves when the listener shuts the connection down or `options.signal`
 * aborts (a SHUTDOWN is sent); rejects with an `SrtError` when the listener refuses (its
 * reason in `reason`: 1404 no such stream, 10 wrong passphrase, …), a handshake step or
 * the media stays silent past `options.timeoutMs` (default 10,000), or the MPEG-TS is bad.
 *
 * @throws {RangeError} (rejects) for a URL that is not a usable `srt://` URL.
 *
 * @example Pull another server's stream
 * ```ts ignore
 * import { pullSrt } from "@arcly/stream/srt";
 *
 * const stop = new AbortController();
 * await pullSrt(new URL("srt://origin:8890?streamid=read:live/cam&latency=200"), {
 *   onFrame: (frame) => handle.publish(frame),
 *   signal: stop.signal,
 * });
 * ```
 */
export const pullSrt: PullClient = async (url: URL, options: PullOptions): Promise<void> => {
  const target = parseSrtUrl(url);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const logger = options.logger ?? silentLogger;
  const clock = () => performance.now();
  let lastMediaMs = clock();
  const onFrame = (frame: MediaFrame) => {
    lastMediaMs = clock();
    options.onFrame(frame);
  };
  const session = await callSrt(target, { kind: "receive", onFrame, onEnd: () => {} }, {
    timeoutMs,
    logger,
    signal: options.signal,
  }).catch((error) => {
    if (options.signal?.aborted) return undefined;
    throw error;
  });
  if (!session) return;
  const connection = session.connection;
  lastMediaMs = clock();
  const watch = setInterval(() => {
    if (clock() - lastMediaMs > timeoutMs) {
      connection.close(`no media from the source for ${timeoutMs} ms`, "warn");
    }
  }, Math.max(10, timeoutMs / SILENCE_CHECKS));
  const end = await session.ended.finally(() => clearInterval(watch));
  if (end.level !== "info") throw new SrtError(`${target.redacted}: ${end.why}`);
};
