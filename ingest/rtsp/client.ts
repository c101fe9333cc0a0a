/**
 * The RTSP pull client ({@linkcode pullRtsp}): plays a camera's or another server's
 * `rtsp://` / `rtsps://` URL and hands its tracks on as frames of the bus's contract.
 *
 * @module
 */

import { escapeForLog } from "../../mod.ts";
import type { PullOptions } from "../pull.ts";
import { playOnce, UdpUnavailable } from "./_play.ts";

/** Options of {@linkcode pullRtsp}: those of every pull client and RTSP's own. */
export interface RtspPullOptions extends PullOptions {
  /**
   * How RTP arrives: `"udp"` (client ports the server sends to), `"tcp"` (interleaved on
   * the RTSP connection), or `"automatic"` (default): UDP first, and TCP when the server
   * refuses UDP (461) or no RTP arrives over UDP within `udpFallbackMs`.
   */
  transport?: "tcp" | "udp" | "automatic";
  /**
   * With `transport: "automatic"`, how long UDP may stay without RTP after PLAY before the
   * client starts over with TCP, in ms (default 3,000).
   */
  udpFallbackMs?: number;
  /** Trust anchors (PEM certificates) for `rtsps://`, besides the system's. */
  caCerts?: string[];
}

/**
 * Pull an RTSP source. The URL's credentials (`rtsp://user:pass@host/…`) answer a 401
 * with Digest (MD5, `qop=auth` or the legacy form) or Basic; they are never sent in a
 * request line or logged. Each video and audio track the kernel carries (H.264, H.265,
 * AAC as `mpeg4-generic` or `MP4A-LATM`, Opus; the first of each kind) is set up, the rest
 * skipped. Parameter sets from the SDP become the first `CONFIG` frames, in-band changes
 * new ones; RTP times become 90 kHz and the tracks share one timeline. Keep-alives
 * (`GET_PARAMETER`, or `OPTIONS` when the server lacks it) go out within the session
 * timeout the server states, receiver reports every 5 s, and a TEARDOWN at the end.
 *
 * Resolves when the source ends (an RTCP BYE on every track) or `signal` aborts; rejects
 * when the connection fails, a request is refused or not answered within `timeoutMs`,
 * or no RTP arrives for `timeoutMs`.
 *
 * @example Pull a camera into a stream
 * ```ts ignore
 * import { Registry } from "@arcly/stream";
 * import { pullRtsp } from "@arcly/stream/rtsp";
 *
 * const registry = new Registry();
 * const handle = registry.startPublish("live", "cam", { protocol: "rtsp", peer: "pull" });
 * const stop = new AbortController();
 * await pullRtsp(new URL("rtsp://admin:secret@192.0.2.10:554/stream1"), {
 *   onFrame: (frame) => handle.publish(frame),
 *   transport: "tcp",
 *   signal: stop.signal,
 * });
 * registry.endPublish(handle, "ended");
 * ```
 */
export async function pullRtsp(url: URL, options: RtspPullOptions): Promise<void> {
  if (url.protocol !== "rtsp:" && url.protocol !== "rtsps:") {
    throw new TypeError(`pullRtsp needs an rtsp:// or rtsps:// URL, not ${url.protocol}`);
  }
  const transport = options.transport ?? "automatic";
  if (transport !== "automatic") return await playOnce(url, { ...options, lower: transport });
  try {
    return await playOnce(url, {
      ...options,
      lower: "udp",
      fallbackAfterMs: options.udpFallbackMs ?? 3000,
    });
  } catch (error) {
    if (options.signal?.aborted) return;
    if (!(error instanceof UdpUnavailable)) throw error;
    options.logger?.info(
      `rtsp pull ${escapeForLog(url.host)}: ${error.message}; trying TCP`,
    );
  }
  return await playOnce(url, { ...options, lower: "tcp" });
}
