/**
 * Which pull client takes a source URL, loaded when first needed (a server with no source
 * of a kind never loads its protocol).
 *
 * @module
 */

import type { PullClient } from "../ingest/pull.ts";
import type { SourceSettings } from "./paths.ts";

/**
 * The pull client for `url` by its scheme (and, for HTTP, its path: `…m3u8` is HLS,
 * `…/whep` WHEP); `rtspTransport` is what an `rtsp://` source uses. `undefined`: none.
 */
export async function pullClientFor(
  url: URL,
  rtspTransport: SourceSettings["rtspTransport"],
): Promise<PullClient | undefined> {
  switch (url.protocol) {
    case "rtsp:":
    case "rtsps:": {
      const { pullRtsp } = await import("../ingest/rtsp/mod.ts");
      return (url, options) => pullRtsp(url, { ...options, transport: rtspTransport });
    }
    case "rtmp:":
    case "rtmps:":
      return (await import("../ingest/rtmp/mod.ts")).pullRtmp;
    case "http:":
    case "https:": {
      if (url.pathname.endsWith(".m3u8")) return (await import("../ingest/http/mod.ts")).pullHls;
      if (url.pathname.endsWith("/whep")) return (await import("../ingest/webrtc/mod.ts")).pullWhep;
      return undefined;
    }
    default:
      return undefined;
  }
}
