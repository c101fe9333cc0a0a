/** Signing JWTs in tests with WebCrypto: the other side of `server/access/jwt.ts`. */

import { encodeBase64url } from "../../../server/access/_base64url.ts";

const PARAMS = {
  RS256: { name: "RSASSA-PKCS1-v1_5" },
  ES256: { name: "ECDSA", hash: "SHA-256" },
  HS256: { name: "HMAC" },
  EdDSA: { name: "Ed25519" },
} as const;

/** Sign `claims` as a compact JWS with `key` (a private or HMAC key) and `alg`. */
export async function signJwt(
  claims: Record<string, unknown>,
  key: CryptoKey,
  alg: keyof typeof PARAMS,
  kid?: string,
): Promise<string> {
  const text = (value: unknown) => encodeBase64url(new TextEncoder().encode(JSON.stringify(value)));
  const input = `${text({ alg, typ: "JWT", ...(kid && { kid }) })}.${text(claims)}`;
  const signature = await crypto.subtle.sign(PARAMS[alg], key, new TextEncoder().encode(input));
  return `${input}.${encodeBase64url(new Uint8Array(signature))}`;
}

/** A fresh key pair for `alg` and its public JWK (with `kid`). */
export async function keyPair(
  alg: "RS256" | "ES256" | "EdDSA",
  kid: string,
): Promise<{ privateKey: CryptoKey; jwk: JsonWebKey }> {
  const params = alg === "RS256"
    ? {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    }
    : alg === "ES256"
    ? { name: "ECDSA", namedCurve: "P-256" }
    : { name: "Ed25519" };
  const pair = await crypto.subtle.generateKey(params, true, ["sign", "verify"]) as CryptoKeyPair;
  const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
  return { privateKey: pair.privateKey, jwk: { ...jwk, kid, alg, use: "sig" } as JsonWebKey };
}

/** Flip one character of a JWT's payload part: a tampered token. */
export function tamper(token: string): string {
  const [header, payload, signature] = token.split(".");
  const i = Math.floor(payload.length / 2);
  const c = payload[i] === "A" ? "B" : "A";
  return `${header}.${payload.slice(0, i)}${c}${payload.slice(i + 1)}.${signature}`;
}
