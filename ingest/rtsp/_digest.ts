/**
 * What both sides of RTSP Digest authentication (RFC 2617, RFC 7616 with MD5) compute:
 * the hash, the `name=value` parameters of a header, and the response.
 *
 * @module
 */

import { createHash } from "node:crypto";

/** The lowercase hex MD5 of `text`. */
export function md5(text: string): string {
  return createHash("md5").update(text).digest("hex");
}

/** The `name=value` / `name="value"` pairs of a Digest header, names lowercased. */
export function parseDigest(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([a-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/gi;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    out[m[1].toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[3];
  }
  return out;
}

/** What a Digest response is computed from. */
export interface DigestInput {
  readonly user: string;
  readonly realm: string;
  readonly password: string;
  readonly method: string;
  readonly uri: string;
  readonly nonce: string;
  /** `"auth"` with its nonce count and client nonce, or absent for the RFC 2069 form. */
  readonly qop?: { readonly nc: string; readonly cnonce: string };
}

/** The `response` value of a Digest `Authorization` (MD5). */
export function digestResponse(d: DigestInput): string {
  const ha1 = md5(`${d.user}:${d.realm}:${d.password}`);
  const ha2 = md5(`${d.method}:${d.uri}`);
  return d.qop
    ? md5(`${ha1}:${d.nonce}:${d.qop.nc}:${d.qop.cnonce}:auth:${ha2}`)
    : md5(`${ha1}:${d.nonce}:${ha2}`);
}

/** `bytes` random bytes as lowercase hex (nonces). */
export function randomHex(bytes: number): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}
