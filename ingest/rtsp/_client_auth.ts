/**
 * The client side of RTSP authentication: reading a 401's challenges and answering them
 * with Basic (RFC 7617) or Digest (RFC 2617 / RFC 7616, MD5, `qop=auth` or the legacy
 * form without qop).
 *
 * @module
 */

import { digestResponse, parseDigest, randomHex } from "./_digest.ts";
import { encodeBase64 } from "../../media/codec/base64.ts";

/** One challenge of a `WWW-Authenticate` value. */
export interface Challenge {
  /** The scheme, lowercased (`"basic"`, `"digest"`, …). */
  readonly scheme: string;
  /** Its parameters, names lowercased. */
  readonly params: Record<string, string>;
}

/**
 * The challenges of `WWW-Authenticate` values. Several fields arrive joined with `", "`
 * (as `Headers` joins them), so a new challenge is recognized by a scheme token that is
 * not followed by `=`.
 */
export function parseChallenges(value: string): Challenge[] {
  const out: { scheme: string; text: string }[] = [];
  for (const item of splitOutsideQuotes(value)) {
    const m = /^([A-Za-z0-9!#$%&'*+.^_`|~-]+)(?:\s+(.*))?$/s.exec(item);
    if (m && !/^[^=\s]+\s*=/.test(item)) out.push({ scheme: m[1].toLowerCase(), text: m[2] ?? "" });
    else if (out.length > 0) out[out.length - 1].text += `, ${item}`;
  }
  return out.map(({ scheme, text }) => ({ scheme, params: parseDigest(text) }));
}

/** Comma-separated items of a header value, commas inside quoted strings kept. */
function splitOutsideQuotes(value: string): string[] {
  const items: string[] = [];
  let quoted = false;
  let from = 0;
  for (let i = 0; i <= value.length; i++) {
    const c = value[i];
    if (c === "\\" && quoted) i++;
    else if (c === '"') quoted = !quoted;
    else if ((c === "," && !quoted) || i === value.length) {
      const item = value.slice(from, i).trim();
      if (item) items.push(item);
      from = i + 1;
    }
  }
  return items;
}

/** Credentials from a URL's user info. */
export interface UserPassword {
  readonly user: string;
  readonly password: string;
}

/**
 * Answers the challenges of one server: after a 401, {@linkcode ClientAuth.accept} picks a
 * challenge (Digest over Basic), and each later request gets an `Authorization` value.
 */
export class ClientAuth {
  #credentials: UserPassword;
  #challenge: Challenge | undefined;
  #nc = 0;
  #cnonce = randomHex(8);

  constructor(credentials: UserPassword) {
    this.#credentials = credentials;
  }

  /** The scheme of the challenge being answered (`"digest"`, `"basic"`), once one is. */
  get scheme(): string | undefined {
    return this.#challenge?.scheme;
  }

  /**
   * Take the challenges of a 401; returns why they cannot be answered, or undefined.
   * A second 401 for the same Digest nonce (not marked stale) means the credentials are wrong.
   */
  accept(wwwAuthenticate: string | null): string | undefined {
    const challenges = parseChallenges(wwwAuthenticate ?? "");
    const digest = challenges.find((c) =>
      c.scheme === "digest" && (c.params.algorithm ?? "md5").toLowerCase() === "md5" &&
      qopOf(c) !== "unsupported"
    );
    const basic = challenges.find((c) => c.scheme === "basic");
    const chosen = digest ?? basic;
    if (!chosen) {
      const offered = challenges.map((c) => c.scheme).join(", ") || "none";
      return `no supported authentication scheme offered (${offered})`;
    }
    const previous = this.#challenge;
    if (previous && previous.scheme === chosen.scheme) {
      const stale = chosen.params.stale?.toLowerCase() === "true";
      if (chosen.scheme === "basic" || (chosen.params.nonce === previous.params.nonce && !stale)) {
        return "the server refused the credentials";
      }
    }
    if (chosen.scheme === "digest" && !chosen.params.nonce) {
      return "a Digest challenge without nonce";
    }
    this.#challenge = chosen;
    this.#nc = 0;
    return undefined;
  }

  /** The `Authorization` value for a request, once a challenge was accepted. */
  header(method: string, uri: string): string | undefined {
    const c = this.#challenge;
    if (!c) return undefined;
    const { user, password } = this.#credentials;
    if (c.scheme === "basic") {
      return `Basic ${encodeBase64(new TextEncoder().encode(`${user}:${password}`))}`;
    }
    const realm = c.params.realm ?? "";
    const nonce = c.params.nonce;
    const auth = qopOf(c) === "auth";
    const nc = (++this.#nc).toString(16).padStart(8, "0");
    const response = digestResponse({
      user,
      realm,
      password,
      method,
      uri,
      nonce,
      qop: auth ? { nc, cnonce: this.#cnonce } : undefined,
    });
    let value = `Digest username="${quote(user)}", realm="${quote(realm)}", ` +
      `nonce="${quote(nonce)}", uri="${quote(uri)}", response="${response}"`;
    if (auth) value += `, qop=auth, nc=${nc}, cnonce="${this.#cnonce}"`;
    if (c.params.opaque !== undefined) value += `, opaque="${quote(c.params.opaque)}"`;
    if (c.params.algorithm) value += `, algorithm=MD5`;
    return value;
  }
}

/** `"auth"` when offered, `"none"` without qop, `"unsupported"` when only other qops are. */
function qopOf(c: Challenge): "auth" | "none" | "unsupported" {
  const qop = c.params.qop;
  if (qop === undefined) return "none";
  return qop.split(",").some((q) => q.trim().toLowerCase() === "auth") ? "auth" : "unsupported";
}

function quote(text: string): string {
  return text.replace(/["\\]/g, "\\$&");
}
