/**
 * The RTSP `Transport` header (RFC 2326 section 12.39): the transports a client offers
 * in SETUP and the one the server answers with.
 *
 * @module
 */

/** One transport specification from a `Transport` header. */
export interface TransportSpec {
  /** `"tcp"` for RTP/AVP/TCP (interleaved), `"udp"` for RTP/AVP and RTP/AVP/UDP. */
  readonly lower: "tcp" | "udp";
  /** Whether the client asked for multicast. */
  readonly multicast: boolean;
  /** The interleaved channels (RTP, RTCP), when given. */
  readonly interleaved?: readonly [number, number];
  /** The client's UDP ports (RTP, RTCP), when given. */
  readonly clientPort?: readonly [number, number];
  /** The server's UDP ports (RTP, RTCP), when given (in a server's answer). */
  readonly serverPort?: readonly [number, number];
  /** The `ssrc` the sender will use, when given (in a server's answer). */
  readonly ssrc?: number;
  /** The lower-cased `mode` (`"play"`, `"record"`), when given. */
  readonly mode?: string;
}

/**
 * The specifications of a `Transport` header, in the client's order of preference (or the
 * one a server answered with).
 * Specifications with other profiles (RTP/SAVP…) or malformed port ranges are left out.
 *
 * @example
 * ```ts
 * import { parseTransport } from "@arcly/stream/rtsp";
 *
 * parseTransport("RTP/AVP/TCP;unicast;interleaved=0-1;mode=record");
 * // [{ lower: "tcp", multicast: false, interleaved: [0, 1], mode: "record" }]
 * ```
 */
export function parseTransport(header: string): TransportSpec[] {
  const specs: TransportSpec[] = [];
  for (const text of header.split(",")) {
    const [profile, ...params] = text.trim().split(";");
    const p = profile.trim().toUpperCase();
    if (p !== "RTP/AVP" && p !== "RTP/AVP/UDP" && p !== "RTP/AVP/TCP") continue;
    let multicast = false;
    let interleaved: [number, number] | undefined;
    let clientPort: [number, number] | undefined;
    let serverPort: [number, number] | undefined;
    let ssrc: number | undefined;
    let mode: string | undefined;
    let valid = true;
    for (const param of params) {
      const eq = param.indexOf("=");
      const name = (eq < 0 ? param : param.slice(0, eq)).trim().toLowerCase();
      const value = eq < 0 ? "" : param.slice(eq + 1).trim().replace(/^"|"$/g, "");
      if (name === "multicast") multicast = true;
      else if (name === "mode") mode = value.toLowerCase();
      else if (name === "interleaved") valid &&= (interleaved = range(value, 255)) !== undefined;
      else if (name === "client_port") valid &&= (clientPort = range(value, 65535)) !== undefined;
      else if (name === "server_port") valid &&= (serverPort = range(value, 65535)) !== undefined;
      else if (name === "ssrc" && /^[0-9a-f]{1,8}$/i.test(value)) ssrc = parseInt(value, 16);
    }
    if (!valid) continue;
    const spec: TransportSpec = { lower: p === "RTP/AVP/TCP" ? "tcp" : "udp", multicast };
    specs.push({
      ...spec,
      ...(interleaved && { interleaved }),
      ...(clientPort && { clientPort }),
      ...(serverPort && { serverPort }),
      ...(ssrc !== undefined && { ssrc }),
      ...(mode && { mode }),
    });
  }
  return specs;
}

/** `a-b` or `a` (then `a+1`) with both ends within 0..max. */
function range(value: string, max: number): [number, number] | undefined {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(value);
  if (!m) return undefined;
  const a = Number(m[1]);
  const b = m[2] === undefined ? a + 1 : Number(m[2]);
  return a <= max && b <= max ? [a, b] : undefined;
}
