/**
 * A WHEP client (RFC 9725's playback counterpart, draft-ietf-wish-whep): plays a stream from a
 * WHEP endpoint — another arcly-stream, MediaMTX, a media server or camera that offers WHEP —
 * over werift, and hands its H.264 and Opus to the caller as frames.
 *
 * @module
 */

import { RTCPeerConnection, useFIR, useH264, useNACK, useOPUS, usePLI, useSdesMid } from "werift";
import { escapeForLog, silentLogger } from "../../mod.ts";
import type { PullOptions } from "../pull.ts";
import { readBoundedBody } from "../http/body.ts";
import { messageOf } from "./_peer.ts";
import { PeerMediaReceiver } from "./_receiver.ts";
import { WebRtcError } from "./error.ts";

/** Options of {@linkcode pullWhep}: those of every pull client, and the endpoint's token. */
export interface WhepPullOptions extends PullOptions {
  /** Sent as `Authorization: Bearer TOKEN` with the offer and the DELETE. */
  token?: string;
  /**
   * Ask the server for a keyframe this often, in ms (default 0: at the start and after
   * packet loss only).
   */
  keyframeIntervalMs?: number;
  /** The longest SDP answer taken, in bytes (default 64 KiB). */
  maxAnswerBytes?: number;
}

const SDP = "application/sdp";

/**
 * Plays the WHEP endpoint `url` (e.g. `http://host:8888/live/cam/whep`) and hands its media to
 * `options.onFrame`: H.264 access units (length-prefixed, a CONFIG frame from the in-band
 * SPS/PPS before the first keyframe and whenever they change) on track 0, Opus packets (after
 * an OpusHead CONFIG) on track 1. It gathers its host ICE candidates, POSTs a recvonly offer
 * (no trickle), applies the `201 Created` answer, asks for a keyframe with a PLI, and at the end
 * DELETEs the session URL the server gave in `Location`.
 *
 * It resolves when `options.signal` aborts or the server ends the session: a DTLS
 * close_notify, or (from servers that end a session silently, werift's among them) no media
 * for `timeoutMs` and then a 404 for the DELETE of the session URL. It rejects with a
 * `WebRtcError` (its `status` the server's for a refused offer, else 0) when the offer is
 * refused (4xx, 5xx), ICE/DTLS fails or does not connect within `timeoutMs`, or no media
 * arrives for `timeoutMs` while the server still has the session.
 *
 * werift needs `--allow-sys=networkInterfaces` (and `--allow-net`).
 *
 * @example
 * ```ts ignore
 * import { Registry } from "@arcly/stream";
 * import { pullWhep } from "@arcly/stream/webrtc";
 *
 * const registry = new Registry();
 * const handle = registry.startPublish("live", "copy", { protocol: "whep-pull" });
 * await pullWhep(new URL("http://origin.example:8888/live/cam/whep"), {
 *   onFrame: (frame) => handle.publish(frame),
 *   signal: AbortSignal.timeout(60_000),
 * });
 * registry.endPublish(handle, "ended");
 * ```
 */
export async function pullWhep(url: URL, options: WhepPullOptions): Promise<void> {
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new RangeError(`not an http(s):// WHEP URL: ${url.protocol}`);
  }
  const { signal } = options;
  if (signal?.aborted) return;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const logger = options.logger ?? silentLogger;
  const shown = escapeForLog(`${url.origin}${url.pathname}${url.search ? "?…" : ""}`);
  const headers: Record<string, string> = options.token
    ? { authorization: `Bearer ${options.token}` }
    : {};
  const pc = new RTCPeerConnection({
    iceServers: [],
    bundlePolicy: "max-bundle",
    codecs: {
      video: [useH264({ rtcpFeedback: [useNACK(), usePLI(), useFIR()] })],
      audio: [useOPUS()],
    },
    headerExtensions: { video: [useSdesMid()], audio: [useSdesMid()] },
  });
  /** How the pull ends: aborted, closed by the server, gone silent, or failed (rejected). */
  const end = Promise.withResolvers<"aborted" | "closed" | "silent">();
  end.promise.catch(() => {}); // a failure after the pull returned is of no consequence
  const fail = (why: string, status = 0) => end.reject(new WebRtcError(status, why));
  const onAbort = () => end.resolve("aborted");
  signal?.addEventListener("abort", onAbort, { once: true });
  let session: URL | undefined;
  let receiver: PeerMediaReceiver | undefined;
  let silence: ReturnType<typeof setInterval> | undefined;
  let deadline: ReturnType<typeof setTimeout> | undefined;
  try {
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    receiver = new PeerMediaReceiver(pc, {
      frame: options.onFrame,
      logger,
      label: `whep pull ${shown}`,
      keyframeIntervalMs: options.keyframeIntervalMs ?? 0,
    });
    pc.connectionStateChange.subscribe((state) => {
      if (state === "failed") fail("ICE/DTLS failed");
      else if (state === "closed") end.resolve("closed");
      else if (state === "connected" && silence === undefined) {
        clearTimeout(deadline);
        logger.info(`whep pull ${shown}: connected`);
        const connectedAt = performance.now();
        silence = setInterval(() => {
          const last = Math.max(receiver!.lastPacketMs, connectedAt);
          if (performance.now() - last > timeoutMs) end.resolve("silent");
        }, Math.max(10, timeoutMs / 4));
      }
    });
    await pc.setLocalDescription(await pc.createOffer());
    await race(gathered(pc), end.promise, timeoutMs, "ICE gathering");
    const answer = await offer(url, pc.localDescription!.sdp, {
      headers,
      maxBytes: options.maxAnswerBytes ?? 64 * 1024,
      timeoutMs,
      signal,
    });
    if (answer.location?.origin === url.origin) session = answer.location;
    else if (answer.location) logger.warn(`whep pull ${shown}: a session URL of another origin`);
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    if (pc.connectionState !== "connected") {
      deadline = setTimeout(() => fail(`no ICE/DTLS connection within ${timeoutMs} ms`), timeoutMs);
    }
    if ((await end.promise) === "silent") {
      // werift (our server's too) ends a session without a DTLS close_notify or an RTCP BYE:
      // a session URL the server no longer knows says that it ended the session.
      const status = session ? await remove(session, headers, timeoutMs) : 0;
      session = undefined;
      if (status !== 404) throw new WebRtcError(0, `no media for ${timeoutMs} ms`);
      logger.info(`whep pull ${shown}: ended: the server had ended the session`);
    } else logger.info(`whep pull ${shown}: ended`);
  } catch (error) {
    if (signal?.aborted) return;
    logger.warn(`whep pull ${shown}: ${escapeForLog(messageOf(error))}`);
    if (error instanceof WebRtcError || error instanceof RangeError) throw error;
    throw new WebRtcError(0, escapeForLog(messageOf(error)));
  } finally {
    clearTimeout(deadline);
    clearInterval(silence);
    signal?.removeEventListener("abort", onAbort);
    receiver?.close();
    await pc.close().catch(() => {});
    if (session) await remove(session, headers, timeoutMs);
  }
}

/** How the offer is sent. */
interface OfferRequest {
  headers: Record<string, string>;
  maxBytes: number;
  timeoutMs: number;
  signal: AbortSignal | undefined;
}

/**
 * POST the offer; the answer and the session URL, or a WebRtcError (with the server's
 * status when it answered). An abort rejects with the signal's reason.
 */
async function offer(
  url: URL,
  sdp: string,
  { headers, maxBytes, timeoutMs, signal }: OfferRequest,
): Promise<{ sdp: string; location: URL | undefined }> {
  const timeout = AbortSignal.timeout(timeoutMs);
  let response: Response;
  let body: Uint8Array | undefined;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { ...headers, "content-type": SDP },
      body: sdp,
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    body = await readBoundedBody(response.body, maxBytes);
  } catch (error) {
    if (timeout.aborted) throw new WebRtcError(0, `no WHEP answer within ${timeoutMs} ms`);
    throw error;
  }
  const text = body === undefined ? "" : new TextDecoder().decode(body);
  if (response.status !== 201) {
    const why = escapeForLog(text.slice(0, 200).trim());
    throw new WebRtcError(response.status, `offer refused: ${response.status} ${why}`.trim());
  }
  if (body === undefined) throw new WebRtcError(0, `the answer is over ${maxBytes} bytes`);
  const type = response.headers.get("content-type")?.split(";")[0].trim().toLowerCase();
  if (type !== SDP) throw new WebRtcError(0, `the answer is ${type ?? "untyped"}, not ${SDP}`);
  const location = response.headers.get("location");
  return { sdp: text, location: location ? new URL(location, url) : undefined };
}

/** DELETE the session URL, bounded; the status, or 0 when the server did not answer. */
async function remove(
  session: URL,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<number> {
  try {
    const response = await fetch(session, {
      method: "DELETE",
      headers,
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.body?.cancel();
    return response.status;
  } catch {
    return 0; // the server is gone or slow: the session ends with its ICE consent anyway
  }
}

/** Resolves once werift has gathered its candidates (they are then in the local description). */
function gathered(pc: RTCPeerConnection): Promise<void> {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return pc.iceGatheringStateChange.watch((state) => state === "complete").then(() => {});
}

/**
 * `step`, unless the pull ends first (then that end's outcome, which for an abort is to
 * resolve: `step`'s value is then never read) or `ms` pass (a WebRtcError naming `what`).
 */
function race<T>(step: Promise<T>, ended: Promise<unknown>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    step,
    ended.then(() => Promise.reject(new WebRtcError(0, `${what}: the pull ended`))),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new WebRtcError(0, `${what}: none within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
