/**
 * RTSP authentication (RFC 2326 section 16.36, RFC 7617 Basic, RFC 2617 Digest): the
 * server's challenges and the check of a client's `Authorization` header. The decision
 * itself stays with the registry's `authorize` hook, which receives the credentials.
 *
 * @module
 */

import type { Credentials } from "../../mod.ts";
import { digestResponse, parseDigest } from "./_digest.ts";

/** An authentication scheme the server can offer. */
export type RtspAuthScheme = "basic" | "digest";

/**
 * How the server asks for credentials. With this option set, a request the registry's
 * `authorize` hook refuses gets `401 Unauthorized` with a challenge per scheme, and the
 * credentials the client then sends (checked first, for Digest) go to the hook as
 * `credentials: { user, password }`. Without it, refusals are `403 Forbidden`.
 */
export interface RtspAuthOptions {
  /** The realm shown to clients (default `"arcly-stream"`). */
  realm?: string;
  /**
   * The password of `user`, or undefined for an unknown user. Digest needs it to check a
   * client's response; without it only Basic is offered.
   */
  password?: (user: string) => string | undefined | Promise<string | undefined>;
  /**
   * The schemes offered, in order of preference (default: `["digest", "basic"]` when
   * `password` is set, else `["basic"]`). Clients pick the first they support; ffmpeg
   * prefers Digest.
   */
  schemes?: RtspAuthScheme[];
}

/** What an `Authorization` header proved. */
export type AuthCheck =
  | { readonly ok: true; readonly credentials?: Credentials }
  | { readonly ok: false; readonly reason: string };

/**
 * Checks `Authorization` headers and writes `WWW-Authenticate` challenges for one
 * server; each connection gets its own Digest nonce.
 *
 * @example Basic
 * ```ts
 * import { RtspAuthenticator } from "@arcly/stream/rtsp";
 *
 * const auth = new RtspAuthenticator({ realm: "cams" });
 * console.log(auth.challenges("n0nce")); // [ 'Basic realm="cams"' ]
 * const check = await auth.check("DESCRIBE", `Basic ${btoa("ann:secret")}`, "n0nce");
 * console.log(check); // { ok: true, credentials: { user: "ann", password: "secret" } }
 * ```
 */
export class RtspAuthenticator {
  /** The realm in challenges. */
  readonly realm: string;
  #password: RtspAuthOptions["password"];
  #schemes: RtspAuthScheme[];

  /** Make an authenticator from the server's `auth` option. */
  constructor(options: RtspAuthOptions) {
    this.realm = options.realm ?? "arcly-stream";
    this.#password = options.password;
    this.#schemes = options.schemes ??
      (options.password ? ["digest", "basic"] : ["basic"]);
    if (this.#schemes.includes("digest") && !this.#password) {
      throw new TypeError("RTSP Digest authentication needs a password lookup");
    }
  }

  /** `WWW-Authenticate` values for a 401 on a connection with Digest nonce `nonce`. */
  challenges(nonce: string): string[] {
    return this.#schemes.map((scheme) =>
      scheme === "digest"
        ? `Digest realm="${this.realm}", nonce="${nonce}", algorithm="MD5"`
        : `Basic realm="${this.realm}"`
    );
  }

  /**
   * Check an `Authorization` header of a `method` request on a connection whose Digest
   * nonce is `nonce`. Basic credentials are passed on as sent; Digest ones only when the
   * response matches the user's password.
   */
  async check(method: string, header: string, nonce: string): Promise<AuthCheck> {
    const space = header.indexOf(" ");
    const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
    const rest = space < 0 ? "" : header.slice(space + 1).trim();
    if (scheme === "basic" && this.#schemes.includes("basic")) {
      let text: string;
      try {
        text = atob(rest);
      } catch {
        return { ok: false, reason: "malformed Basic credentials" };
      }
      const colon = text.indexOf(":");
      if (colon < 0) return { ok: false, reason: "malformed Basic credentials" };
      return {
        ok: true,
        credentials: { user: text.slice(0, colon), password: text.slice(colon + 1) },
      };
    }
    if (scheme === "digest" && this.#schemes.includes("digest")) {
      return await this.#checkDigest(method, parseDigest(rest), nonce);
    }
    return { ok: false, reason: `authentication scheme ${JSON.stringify(scheme)} not offered` };
  }

  async #checkDigest(
    method: string,
    p: Record<string, string>,
    nonce: string,
  ): Promise<AuthCheck> {
    const { username, uri, response } = p;
    if (!username || !uri || !response) return { ok: false, reason: "incomplete Digest response" };
    if (p.nonce !== nonce) return { ok: false, reason: "stale or foreign Digest nonce" };
    if ((p.realm ?? "") !== this.realm) return { ok: false, reason: "wrong Digest realm" };
    const password = await this.#password!(username);
    if (password === undefined) return { ok: false, reason: `unknown user ${username}` };
    if (p.qop !== undefined && p.qop !== "auth") {
      return { ok: false, reason: "unsupported Digest qop" };
    }
    const expected = digestResponse({
      user: username,
      realm: this.realm,
      password,
      method,
      uri,
      nonce,
      qop: p.qop ? { nc: p.nc ?? "", cnonce: p.cnonce ?? "" } : undefined,
    });
    if (expected !== response.toLowerCase()) return { ok: false, reason: "wrong Digest response" };
    return { ok: true, credentials: { user: username, password } };
  }
}
