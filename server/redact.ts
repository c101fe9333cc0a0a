/**
 * Source and target URLs as logs and `/v1/streams` may show them.
 *
 * @module
 */

/**
 * `url` with its user info and its query (passwords, tokens, SRT passphrases) replaced by
 * `…`, so that what is hidden stays visible as hidden.
 *
 * @example
 * ```ts
 * import { redactUrl } from "@arcly/stream/server";
 *
 * redactUrl("rtsp://admin:secret@10.0.0.9/stream1?token=x"); // "rtsp://…@10.0.0.9/stream1?…"
 * ```
 */
export function redactUrl(url: string): string {
  const at = url.indexOf("?");
  const bare = (at < 0 ? url : url.slice(0, at)).replace(
    /^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i,
    "$1…@",
  );
  return at < 0 ? bare : `${bare}?…`;
}
