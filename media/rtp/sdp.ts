/**
 * Session Description Protocol (RFC 8866) for RTP sessions, as RTSP and WebRTC use it:
 * parse a description, write one, and read `rtpmap`/`fmtp` attributes.
 *
 * @module
 */

/** One `a=` line: `a=name:value` or a flag `a=name`. */
export interface SdpAttribute {
  /** The attribute name, e.g. `"rtpmap"`. */
  readonly name: string;
  /** Everything after the first colon, or undefined for a flag attribute. */
  readonly value?: string;
}

/** One `m=` section and the lines that follow it. */
export interface SdpMedia {
  /** The media type: `"video"`, `"audio"`, `"application"`… */
  readonly type: string;
  /** The port (0 in RTSP descriptions, 9 in WebRTC offers). */
  readonly port: number;
  /** The transport protocol, e.g. `"RTP/AVP"`. */
  readonly protocol: string;
  /** The RTP payload types (as text, in order). */
  readonly formats: readonly string[];
  /** The `a=` lines of the section, in order. */
  readonly attributes: readonly SdpAttribute[];
  /** Other lines of the section (`c=`, `b=`, `i=`…), as `"c=IN IP4 0.0.0.0"`. */
  readonly lines?: readonly string[];
}

/** A whole description: session-level fields, then media sections. */
export interface SessionDescription {
  /** The `o=` line value. */
  readonly origin: string;
  /** The `s=` session name. */
  readonly name: string;
  /** Session-level `a=` lines. */
  readonly attributes: readonly SdpAttribute[];
  /** Other session-level lines (`c=`, `t=`, `i=`, `b=`…), as `"t=0 0"`. */
  readonly lines: readonly string[];
  /** The media sections in order. */
  readonly media: readonly SdpMedia[];
}

/** What an `a=rtpmap:` line says about one payload type. */
export interface RtpMap {
  /** The payload type number. */
  readonly payloadType: number;
  /** The encoding name as written (compare case-insensitively), e.g. `"H264"`. */
  readonly encoding: string;
  /** The RTP clock rate in Hz. */
  readonly clockRate: number;
  /** The channel count for audio, when given. */
  readonly channels?: number;
}

/**
 * A description that cannot be used: not SDP, malformed, or over the size limits.
 *
 * @example
 * ```ts
 * import { parseSdp, SdpError } from "@arcly/stream/rtp";
 *
 * try {
 *   parseSdp("hello");
 * } catch (error) {
 *   console.log(error instanceof SdpError); // true
 * }
 * ```
 */
export class SdpError extends Error {
  /** Make an error with a human-readable reason. */
  constructor(message: string) {
    super(message);
    this.name = "SdpError";
  }
}

const MAX_LINES = 2000;
const MAX_MEDIA = 16;

/**
 * Parses an SDP text. Unknown line types are kept; lines that are not `x=value` are an
 * error, as are a missing `v=0`, a malformed `m=` line, more than 16 media sections or
 * more than 2000 lines.
 *
 * @throws {SdpError} when the text is not a usable description.
 * @example
 * ```ts
 * import { parseSdp } from "@arcly/stream/rtp";
 *
 * const sdp = parseSdp(
 *   "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\n" +
 *     "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=0\r\n",
 * );
 * console.log(sdp.media[0].type, sdp.media[0].formats); // video [ "96" ]
 * ```
 */
export function parseSdp(text: string): SessionDescription {
  const lines = text.split(/\r?\n/);
  if (lines.length > MAX_LINES) throw new SdpError(`SDP has more than ${MAX_LINES} lines`);
  let origin = "";
  let name = "";
  let version: string | undefined;
  const attributes: SdpAttribute[] = [];
  const sessionLines: string[] = [];
  const media: { type: string; port: number; protocol: string; formats: string[] }[] = [];
  const mediaAttributes: SdpAttribute[][] = [];
  const mediaLines: string[][] = [];
  for (const raw of lines) {
    const line = raw.trim();
    if (line === "") continue;
    if (line.length < 2 || line[1] !== "=" || !/[a-z]/.test(line[0])) {
      throw new SdpError(`malformed SDP line ${JSON.stringify(line.slice(0, 60))}`);
    }
    const type = line[0];
    const value = line.slice(2);
    if (version === undefined) {
      if (type !== "v" || value.trim() !== "0") throw new SdpError("SDP does not start with v=0");
      version = value;
      continue;
    }
    const inMedia = media.length > 0;
    if (type === "m") {
      if (media.length === MAX_MEDIA) throw new SdpError(`more than ${MAX_MEDIA} media sections`);
      media.push(parseMediaLine(value));
      mediaAttributes.push([]);
      mediaLines.push([]);
    } else if (type === "a") {
      const colon = value.indexOf(":");
      const attribute = colon < 0
        ? { name: value }
        : { name: value.slice(0, colon), value: value.slice(colon + 1) };
      (inMedia ? mediaAttributes[media.length - 1] : attributes).push(attribute);
    } else if (!inMedia && type === "o") {
      origin = value;
    } else if (!inMedia && type === "s") {
      name = value;
    } else {
      (inMedia ? mediaLines[media.length - 1] : sessionLines).push(line);
    }
  }
  if (version === undefined) throw new SdpError("empty SDP");
  return {
    origin,
    name,
    attributes,
    lines: sessionLines,
    media: media.map((m, i) => ({ ...m, attributes: mediaAttributes[i], lines: mediaLines[i] })),
  };
}

function parseMediaLine(value: string): {
  type: string;
  port: number;
  protocol: string;
  formats: string[];
} {
  const parts = value.trim().split(/\s+/);
  const port = parseInt(parts[1] ?? "", 10);
  if (parts.length < 4 || !/^[a-z]+$/i.test(parts[0]) || !(port >= 0 && port <= 65535)) {
    throw new SdpError(`malformed m= line ${JSON.stringify(value.slice(0, 60))}`);
  }
  return { type: parts[0].toLowerCase(), port, protocol: parts[2], formats: parts.slice(3) };
}

/**
 * Writes a description as SDP text with CRLF line ends: `v=0`, `o=`, `s=`, the session
 * lines (a `t=0 0` is added when there is none) and attributes, then each media section.
 *
 * @example
 * ```ts
 * import { formatSdp } from "@arcly/stream/rtp";
 *
 * const text = formatSdp({
 *   origin: "- 0 0 IN IP4 127.0.0.1",
 *   name: "live/cam",
 *   lines: [],
 *   attributes: [{ name: "control", value: "*" }],
 *   media: [{
 *     type: "audio",
 *     port: 0,
 *     protocol: "RTP/AVP",
 *     formats: ["97"],
 *     attributes: [{ name: "rtpmap", value: "97 opus/48000/2" }],
 *   }],
 * });
 * console.log(text.split("\r\n")[4]); // "a=control:*"
 * ```
 */
export function formatSdp(sdp: SessionDescription): string {
  const out = ["v=0", `o=${sdp.origin}`, `s=${sdp.name || "-"}`];
  out.push(...sdp.lines);
  if (!sdp.lines.some((l) => l.startsWith("t="))) out.push("t=0 0");
  for (const a of sdp.attributes) out.push(attributeLine(a));
  for (const m of sdp.media) {
    out.push(`m=${m.type} ${m.port} ${m.protocol} ${m.formats.join(" ")}`);
    out.push(...(m.lines ?? []));
    for (const a of m.attributes) out.push(attributeLine(a));
  }
  return out.join("\r\n") + "\r\n";
}

function attributeLine(a: SdpAttribute): string {
  return a.value === undefined ? `a=${a.name}` : `a=${a.name}:${a.value}`;
}

/**
 * The value of the first attribute called `name` (case-insensitive), or undefined.
 *
 * @example
 * ```ts
 * import { sdpAttribute } from "@arcly/stream/rtp";
 *
 * sdpAttribute([{ name: "control", value: "trackID=1" }], "control"); // "trackID=1"
 * ```
 */
export function sdpAttribute(
  attributes: readonly SdpAttribute[],
  name: string,
): string | undefined {
  const lower = name.toLowerCase();
  return attributes.find((a) => a.name.toLowerCase() === lower)?.value;
}

/**
 * The `rtpmap` of the media section's first payload type, or undefined when it has
 * none (static payload types such as 0 for PCMU have no rtpmap).
 *
 * @throws {SdpError} when the rtpmap line is malformed.
 * @example
 * ```ts
 * import { rtpMap } from "@arcly/stream/rtp";
 *
 * rtpMap({
 *   type: "audio", port: 0, protocol: "RTP/AVP", formats: ["97"],
 *   attributes: [{ name: "rtpmap", value: "97 MPEG4-GENERIC/44100/2" }],
 * }); // { payloadType: 97, encoding: "MPEG4-GENERIC", clockRate: 44100, channels: 2 }
 * ```
 */
export function rtpMap(media: SdpMedia): RtpMap | undefined {
  const pt = media.formats[0];
  for (const a of media.attributes) {
    if (a.name.toLowerCase() !== "rtpmap" || a.value === undefined) continue;
    const match = /^(\d{1,3})\s+([^/\s]+)\/(\d{1,7})(?:\/(\d{1,3}))?\s*$/.exec(a.value);
    if (!match) throw new SdpError(`malformed rtpmap ${JSON.stringify(a.value.slice(0, 60))}`);
    if (match[1] !== pt) continue;
    const payloadType = Number(match[1]);
    const clockRate = Number(match[3]);
    if (payloadType > 127 || clockRate === 0) {
      throw new SdpError(`rtpmap out of range: ${JSON.stringify(a.value)}`);
    }
    const map: RtpMap = { payloadType, encoding: match[2], clockRate };
    return match[4] === undefined ? map : { ...map, channels: Number(match[4]) };
  }
  return undefined;
}

/**
 * The `fmtp` parameters of the media section's first payload type, with lower-cased
 * names (`{}` when there is no fmtp line).
 *
 * @example
 * ```ts
 * import { fmtpParameters } from "@arcly/stream/rtp";
 *
 * fmtpParameters({
 *   type: "video", port: 0, protocol: "RTP/AVP", formats: ["96"],
 *   attributes: [{ name: "fmtp", value: "96 packetization-mode=1; profile-level-id=42C01E" }],
 * }); // { "packetization-mode": "1", "profile-level-id": "42C01E" }
 * ```
 */
export function fmtpParameters(media: SdpMedia): Record<string, string> {
  const pt = media.formats[0];
  for (const a of media.attributes) {
    if (a.name.toLowerCase() !== "fmtp" || a.value === undefined) continue;
    const space = a.value.search(/\s/);
    if (space < 0 || a.value.slice(0, space) !== pt) continue;
    const params: Record<string, string> = {};
    for (const part of a.value.slice(space + 1).split(";")) {
      const eq = part.indexOf("=");
      const key = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
      if (key) params[key] = eq < 0 ? "" : part.slice(eq + 1).trim();
    }
    return params;
  }
  return {};
}
