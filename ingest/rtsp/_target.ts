/** Request URIs: `rtsp://host:port/APP/NAME[/CONTROL][?query]`. */

import { RtspError } from "./message.ts";

/** What a request URI names. */
export interface Target {
  readonly app: string;
  readonly stream: string;
  readonly query: string;
  /** The track control after the stream name (`"trackID=0"`), or `""`. */
  readonly control: string;
  /** The request URI without the track control, ending with `/`. */
  readonly base: string;
}

/** The request URI with a trailing slash. */
export function baseOf(uri: string): string {
  return uri.endsWith("/") ? uri : `${uri}/`;
}

/**
 * Reads `rtsp://host:port/APP/NAME[/CONTROL][?query]` (or a path without scheme and
 * host). A track control appended after a query (`?q=1/trackID=0`, as clients build
 * it from a base with a query) is recognized too.
 */
export function parseTarget(uri: string): Target {
  let url: URL;
  try {
    url = new URL(uri, "rtsp://localhost");
  } catch {
    throw new RtspError(400, `malformed URI ${JSON.stringify(uri.slice(0, 80))}`);
  }
  let query = url.search.slice(1);
  let trailing = "";
  const slash = query.lastIndexOf("/");
  if (slash >= 0) {
    trailing = query.slice(slash + 1);
    query = query.slice(0, slash);
  }
  let segments: string[];
  try {
    segments = url.pathname.split("/").filter((s) => s !== "").map(decodeURIComponent);
  } catch {
    throw new RtspError(400, `malformed URI ${JSON.stringify(uri.slice(0, 80))}`);
  }
  if (segments.length < 2) {
    throw new RtspError(404, `path ${JSON.stringify(url.pathname.slice(0, 80))} is not /APP/NAME`);
  }
  const [app, stream, ...rest] = segments;
  const control = trailing || rest.join("/");
  const end = uri.length - (trailing ? trailing.length + 1 : 0);
  let base = uri.slice(0, end);
  if (!trailing && rest.length > 0) {
    base = base.slice(0, base.lastIndexOf(rest.join("/")));
  }
  return { app, stream, query, control, base: baseOf(base) };
}
