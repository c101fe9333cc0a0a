/**
 * JSON Web Tokens (RFC 7519) in compact JWS form (RFC 7515), verified with WebCrypto
 * against a static key or a JWKS URL (RFC 7517). Algorithms: `RS256`, `PS256`, `ES256`,
 * `ES384`, `HS256` and `EdDSA` (Ed25519). `exp` and `nbf` are checked with a small leeway,
 * `iss` and `aud` when configured.
 *
 * @module
 */

import { decodeBase64url, encodeBase64url } from "./_base64url.ts";
import { readBoundedBody } from "../../ingest/http/body.ts";

/** The claims of a verified token. */
export type JwtClaims = Record<string, unknown>;

/** Where the verification keys come from. */
export interface JwtOptions {
  /**
   * A JWKS URL; fetched on first use, kept for `jwksCacheMs`, fetched again (at most once
   * per `jwksRefreshMs`) when a token names an unknown `kid`.
   */
  jwksUrl?: string;
  /** A static key: a public JWK (RSA, EC, OKP) or, for HS256, the shared secret as text. */
  key?: JsonWebKey | string;
  /** Required `iss`, when set. */
  issuer?: string;
  /** Required `aud` (the claim equals it or lists it), when set. */
  audience?: string;
  /** Seconds of clock skew allowed on `exp` and `nbf` (default 30). */
  leewaySeconds?: number;
  /** How long a fetched JWKS is used (default 3,600,000 ms). */
  jwksCacheMs?: number;
  /** The shortest time between two fetches of the JWKS (default 10,000 ms). */
  jwksRefreshMs?: number;
  /** A JWKS fetch that takes longer fails (default 5,000 ms). */
  jwksTimeoutMs?: number;
  /**
   * How long a token whose signature verified is taken as verified without checking the
   * signature again (default 30,000 ms; 0 checks every time): a player sending its token
   * with every playlist and segment request costs one signature check per period. `exp`,
   * `nbf`, `iss` and `aud` are checked every time.
   */
  verifiedCacheMs?: number;
}

/** A token that did not verify, with the reason. */
export class JwtError extends Error {
  /** Make an error saying why. */
  constructor(message: string) {
    super(message);
    this.name = "JwtError";
  }
}

const MAX_TOKEN_LENGTH = 8192;
const VERIFIED_CACHE_SIZE = 4096;
const MAX_JWKS_BYTES = 256 * 1024;

type Verify = { algorithm: AlgorithmIdentifier | RsaPssParams | EcdsaParams; key: CryptoKey };

/** WebCrypto parameters per JWS `alg`. */
const ALGORITHMS: Record<string, { import: unknown; verify: Verify["algorithm"] }> = {
  RS256: {
    import: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
    verify: { name: "RSASSA-PKCS1-v1_5" },
  },
  PS256: {
    import: { name: "RSA-PSS", hash: "SHA-256" },
    verify: { name: "RSA-PSS", saltLength: 32 },
  },
  ES256: {
    import: { name: "ECDSA", namedCurve: "P-256" },
    verify: { name: "ECDSA", hash: "SHA-256" },
  },
  ES384: {
    import: { name: "ECDSA", namedCurve: "P-384" },
    verify: { name: "ECDSA", hash: "SHA-384" },
  },
  HS256: { import: { name: "HMAC", hash: "SHA-256" }, verify: { name: "HMAC" } },
  EdDSA: { import: { name: "Ed25519" }, verify: { name: "Ed25519" } },
};

function decode(text: string, what: string): Uint8Array<ArrayBuffer> {
  const bytes = decodeBase64url(text);
  if (!bytes) throw new JwtError(`${what} is not base64url`);
  return bytes;
}

function decodeJson(text: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(decode(text, what)),
    );
  } catch (error) {
    if (error instanceof JwtError) throw error;
    throw new JwtError(`${what} is not JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new JwtError(`${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** Whether `text` has the shape of a compact JWS (three base64url parts). */
export function looksLikeJwt(text: string): boolean {
  return text.length <= MAX_TOKEN_LENGTH && /^[\w-]+\.[\w-]+\.[\w-]*$/.test(text);
}

/**
 * Verifies tokens against one key source.
 *
 * @example A token signed with a shared secret
 * ```ts
 * import { JwtVerifier } from "@arcly/stream/access";
 *
 * const verifier = new JwtVerifier({ key: "a long shared secret" });
 * try {
 *   await verifier.verify("eyJ...");
 * } catch (error) {
 *   console.log((error as Error).message);
 * }
 * ```
 */
export class JwtVerifier {
  #options: JwtOptions;
  #static = new Map<string, Promise<CryptoKey>>();
  #jwks: { keys: JsonWebKey[]; fetchedMs: number } | undefined;
  #verified = new Map<string, { claims: JwtClaims; untilMs: number }>();
  #imported = new WeakMap<JsonWebKey, Map<string, Promise<CryptoKey>>>();
  #fetching: Promise<void> | undefined;
  #lastFetchMs = -Infinity;

  /**
   * Make a verifier for one key source.
   *
   * @throws {TypeError} without exactly one of `jwksUrl` and `key`.
   */
  constructor(options: JwtOptions) {
    if ((options.jwksUrl === undefined) === (options.key === undefined)) {
      throw new TypeError("JWT verification needs exactly one of jwksUrl and key");
    }
    this.#options = options;
  }

  /**
   * The claims of `token` once its signature, `exp`, `nbf`, `iss` and `aud` check out.
   *
   * @throws {JwtError} saying why it does not.
   */
  async verify(token: string, nowMs: number = Date.now()): Promise<JwtClaims> {
    if (!looksLikeJwt(token)) throw new JwtError("not a compact JWT");
    const known = this.#verified.get(token);
    const claims = known && known.untilMs > performance.now()
      ? known.claims
      : await this.#verifySignature(token);
    this.#checkClaims(claims, nowMs);
    return claims;
  }

  /** The claims of a token whose signature verifies, remembered for `verifiedCacheMs`. */
  async #verifySignature(token: string): Promise<JwtClaims> {
    const [headerPart, payloadPart, signaturePart] = token.split(".");
    const header = decodeJson(headerPart, "the JWT header");
    const alg = header.alg;
    if (typeof alg !== "string" || !Object.hasOwn(ALGORITHMS, alg)) {
      throw new JwtError(`JWT algorithm ${JSON.stringify(alg)} is not accepted`);
    }
    const kid = typeof header.kid === "string" ? header.kid : undefined;
    const key = await this.#key(alg, kid);
    const signature = decode(signaturePart, "the JWT signature");
    const signed = new TextEncoder().encode(`${headerPart}.${payloadPart}`);
    const ok = await crypto.subtle.verify(
      ALGORITHMS[alg].verify as AlgorithmIdentifier,
      key,
      signature,
      signed,
    ).catch(() => false);
    if (!ok) throw new JwtError("the JWT signature does not verify");
    const claims = decodeJson(payloadPart, "the JWT payload");
    const cacheMs = this.#options.verifiedCacheMs ?? 30_000;
    if (cacheMs > 0) {
      if (this.#verified.size >= VERIFIED_CACHE_SIZE) {
        this.#verified.delete(this.#verified.keys().next().value!);
      }
      this.#verified.set(token, { claims, untilMs: performance.now() + cacheMs });
    }
    return claims;
  }

  #checkClaims(claims: JwtClaims, nowMs: number): void {
    const now = nowMs / 1000;
    const leeway = this.#options.leewaySeconds ?? 30;
    if (
      claims.exp !== undefined && !(typeof claims.exp === "number" && now < claims.exp + leeway)
    ) {
      throw new JwtError("the JWT has expired");
    }
    if (
      claims.nbf !== undefined && !(typeof claims.nbf === "number" && now >= claims.nbf - leeway)
    ) {
      throw new JwtError("the JWT is not valid yet");
    }
    const { issuer, audience } = this.#options;
    if (issuer !== undefined && claims.iss !== issuer) {
      throw new JwtError("the JWT has another issuer");
    }
    if (audience !== undefined) {
      const aud = claims.aud;
      if (!(aud === audience || (Array.isArray(aud) && aud.includes(audience)))) {
        throw new JwtError("the JWT is for another audience");
      }
    }
  }

  async #key(alg: string, kid: string | undefined): Promise<CryptoKey> {
    const { key } = this.#options;
    if (key !== undefined) {
      const material = typeof key === "string"
        ? { kty: "oct", k: encodeBase64url(new TextEncoder().encode(key)) }
        : key;
      if (!algorithmFits(alg, material)) {
        throw new JwtError(`the configured key does not fit algorithm ${alg}`);
      }
      let imported = this.#static.get(alg);
      if (!imported) {
        imported = importJwk(alg, material);
        this.#static.set(alg, imported);
      }
      return await imported;
    }
    let jwk = this.#find(alg, kid);
    if (!jwk) {
      await this.#refresh();
      jwk = this.#find(alg, kid);
    }
    if (!jwk) throw new JwtError(`no JWKS key for kid ${JSON.stringify(kid ?? null)} and ${alg}`);
    let byAlg = this.#imported.get(jwk);
    if (!byAlg) this.#imported.set(jwk, byAlg = new Map());
    let imported = byAlg.get(alg);
    if (!imported) byAlg.set(alg, imported = importJwk(alg, jwk));
    return await imported;
  }

  #find(alg: string, kid: string | undefined): JsonWebKey | undefined {
    const jwks = this.#jwks;
    const maxAge = this.#options.jwksCacheMs ?? 3_600_000;
    if (!jwks || performance.now() - jwks.fetchedMs > maxAge) return undefined;
    return jwks.keys.find((k) =>
      (kid === undefined || (k as { kid?: string }).kid === kid) && algorithmFits(alg, k)
    );
  }

  /** Fetch the JWKS again, unless it was fetched within `jwksRefreshMs`. */
  #refresh(): Promise<void> {
    if (this.#fetching) return this.#fetching;
    if (performance.now() - this.#lastFetchMs < (this.#options.jwksRefreshMs ?? 10_000)) {
      return Promise.resolve();
    }
    this.#lastFetchMs = performance.now();
    this.#fetching = this.#fetchJwks().finally(() => this.#fetching = undefined);
    return this.#fetching;
  }

  async #fetchJwks(): Promise<void> {
    let text: string;
    try {
      const response = await fetch(this.#options.jwksUrl!, {
        signal: AbortSignal.timeout(this.#options.jwksTimeoutMs ?? 5000),
        headers: { accept: "application/json" },
      });
      if (!response.ok) {
        await response.body?.cancel();
        throw new Error(`status ${response.status}`);
      }
      const body = await readBoundedBody(response.body, MAX_JWKS_BYTES);
      if (!body) throw new Error(`larger than ${MAX_JWKS_BYTES} bytes`);
      text = new TextDecoder().decode(body);
    } catch (error) {
      throw new JwtError(`the JWKS could not be fetched: ${(error as Error).message}`);
    }
    let keys: unknown;
    try {
      keys = (JSON.parse(text) as { keys?: unknown }).keys;
    } catch {
      throw new JwtError("the JWKS is not JSON");
    }
    if (!Array.isArray(keys)) throw new JwtError("the JWKS has no keys array");
    this.#jwks = {
      keys: keys.filter((k): k is JsonWebKey => typeof k === "object" && k !== null),
      fetchedMs: performance.now(),
    };
  }
}

/** Whether a JWK can verify `alg` (its `kty`, curve and declared `alg` agree). */
function algorithmFits(alg: string, jwk: JsonWebKey): boolean {
  if (jwk.alg !== undefined && jwk.alg !== alg) return false;
  if (jwk.use !== undefined && jwk.use !== "sig") return false;
  switch (alg) {
    case "RS256":
    case "PS256":
      return jwk.kty === "RSA";
    case "ES256":
      return jwk.kty === "EC" && jwk.crv === "P-256";
    case "ES384":
      return jwk.kty === "EC" && jwk.crv === "P-384";
    case "HS256":
      return jwk.kty === "oct";
    case "EdDSA":
      return jwk.kty === "OKP" && jwk.crv === "Ed25519";
    default:
      return false;
  }
}

async function importJwk(alg: string, jwk: JsonWebKey): Promise<CryptoKey> {
  // only the public members: WebCrypto refuses a private JWK for a verify-only import
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, key_ops: _ops, ...rest } = jwk;
  const material = jwk.kty === "oct" ? { kty: "oct", k: jwk.k } : rest;
  try {
    return await crypto.subtle.importKey(
      "jwk",
      { ...material, ext: true },
      ALGORITHMS[alg].import as AlgorithmIdentifier,
      false,
      ["verify"],
    );
  } catch (error) {
    throw new JwtError(`the ${alg} key cannot be imported: ${(error as Error).message}`);
  }
}
