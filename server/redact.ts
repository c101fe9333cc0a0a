/**
 * Source and target URLs as logs and `/v1/streams` may show them.
 *
 * @module
 */

/** Options of {@linkcode redactUrl}. */
export interface RedactOptions {
  /**
   * Hide an RTMP URL's stream key too (the last segment of its path, after the app): what a
   * push target such as a platform's ingest takes as its secret. Default false.
   */
  streamKey?: boolean;
}

/**
 * `url` with its user info and its query (passwords, tokens, SRT passphrases) replaced by
 * `…`, so that what is hidden stays visible as hidden; with `streamKey`, an RTMP URL's
 * stream key too.
 *
 * @example
 * ```ts
 * import { redactUrl } from "@arcly/stream/server";
 *
 * redactUrl("rtsp://admin:secret@10.0.0.9/stream1?token=x"); // "rtsp://…@10.0.0.9/stream1?…"
 * redactUrl("rtmp://ingest.example/live2/abcd-1234", { streamKey: true }); // "rtmp://ingest.example/live2/…"
 * ```
 */
export function redactUrl(url: string, options: RedactOptions = {}): string {
  const at = url.indexOf("?");
  let bare = (at < 0 ? url : url.slice(0, at)).replace(
    /^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i,
    "$1…@",
  );
  if (options.streamKey) {
    bare = bare.replace(/^(rtmps?:\/\/[^/]+\/[^/]+\/(?:[^/]+\/)*)[^/]+$/i, "$1…");
  }
  return at < 0 ? bare : `${bare}?…`;
}
