/**
 * Stored secrets (passwords and static tokens) and their checks. A secret is either
 * hashed, in the form `pbkdf2-sha256$ITERATIONS$SALT$HASH` (PBKDF2 with HMAC-SHA-256,
 * salt and 32-byte hash in unpadded base64url), or plain text where the operator chose to
 * write it so. {@linkcode hashSecret} makes the hashed form.
 *
 * @module
 */

import { decodeBase64url, encodeBase64url } from "./_base64url.ts";

/** The prefix of a hashed secret. */
export const PBKDF2_PREFIX = "pbkdf2-sha256$";

/** Iterations {@linkcode hashSecret} uses by default (OWASP's 2023 figure for PBKDF2-SHA256). */
export const DEFAULT_ITERATIONS = 600_000;

const MIN_ITERATIONS = 10_000;
const MAX_ITERATIONS = 10_000_000;
const HASH_BYTES = 32;
const encoder = new TextEncoder();

/** A hashed secret, parsed. */
interface Pbkdf2Secret {
  readonly iterations: number;
  readonly salt: Uint8Array<ArrayBuffer>;
  readonly hash: Uint8Array;
}

/**
 * Parse a stored secret: the hashed form, or `undefined` for plain text.
 *
 * @throws {SyntaxError} when it starts like the hashed form but is not one.
 */
function parseStored(stored: string): Pbkdf2Secret | undefined {
  if (!stored.startsWith(PBKDF2_PREFIX)) return undefined;
  const parts = stored.slice(PBKDF2_PREFIX.length).split("$");
  const iterations = /^\d{1,8}$/.test(parts[0] ?? "") ? Number(parts[0]) : NaN;
  const salt = decodeBase64url(parts[1] ?? "");
  const hash = decodeBase64url(parts[2] ?? "");
  if (
    parts.length !== 3 || !(iterations >= MIN_ITERATIONS && iterations <= MAX_ITERATIONS) ||
    !salt || salt.length < 8 || hash?.length !== HASH_BYTES
  ) {
    throw new SyntaxError(
      `a hashed secret is ${PBKDF2_PREFIX}ITERATIONS$SALT$HASH with ${MIN_ITERATIONS} to ` +
        `${MAX_ITERATIONS} iterations, a salt of 8 bytes or more and a 32-byte hash`,
    );
  }
  return { iterations, salt, hash };
}

/**
 * Whether `stored` is a valid secret (plain text, or a well-formed hashed form).
 *
 * @example
 * ```ts
 * import { checkStoredSecret } from "@arcly/stream/access";
 *
 * checkStoredSecret("pbkdf2-sha256$1$x$y"); // "a hashed secret is …"
 * checkStoredSecret("letmein"); // undefined: plain text
 * ```
 */
export function checkStoredSecret(stored: string): string | undefined {
  try {
    parseStored(stored);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

async function pbkdf2(
  secret: string,
  salt: Uint8Array<ArrayBuffer>,
  iterations: number,
): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), "PBKDF2", false, [
    "deriveBits",
  ]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations },
    key,
    HASH_BYTES * 8,
  );
  return new Uint8Array(bits);
}

/** Equal bytes, in time that depends only on the lengths. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

/**
 * Hash a password or token for the access config: PBKDF2-SHA256 with a random 16-byte
 * salt. The result goes where the config takes a secret (a user's `secret`, a `token`).
 *
 * @example
 * ```ts
 * import { hashSecret } from "@arcly/stream/access";
 *
 * const stored = await hashSecret("correct horse battery staple");
 * console.log(stored); // pbkdf2-sha256$600000$…$…
 * ```
 */
export async function hashSecret(secret: string, iterations = DEFAULT_ITERATIONS): Promise<string> {
  if (!(Number.isInteger(iterations) && iterations >= MIN_ITERATIONS)) {
    throw new RangeError(`at least ${MIN_ITERATIONS} iterations, got ${iterations}`);
  }
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const hash = await pbkdf2(secret, salt, iterations);
  return `${PBKDF2_PREFIX}${iterations}$${encodeBase64url(salt)}$${encodeBase64url(hash)}`;
}

/** Options for {@linkcode SecretChecker}. */
export interface SecretCheckerOptions {
  /** Answers remembered, oldest dropped first (default 4096). */
  cacheSize?: number;
  /** Key derivations run at once (default 2). */
  concurrency?: number;
  /** Derivations waiting for a turn; beyond this a check fails at once (default 64). */
  maxWaiting?: number;
}

/**
 * Checks offered secrets against stored ones. Answers are remembered (keyed by an HMAC
 * of the offered secret under a per-process key, never the secret itself), so a client
 * repeating its password costs one derivation; derivations run a few at a time and a
 * flood of new guesses beyond `maxWaiting` is refused without deriving anything.
 *
 * @example
 * ```ts
 * import { hashSecret, SecretChecker } from "@arcly/stream/access";
 *
 * const checker = new SecretChecker();
 * const stored = await hashSecret("pw", 10_000);
 * await checker.check(stored, "pw"); // true
 * await checker.check("plain", "plain"); // true
 * ```
 */
export class SecretChecker {
  #cache = new Map<string, boolean>();
  #cacheSize: number;
  #concurrency: number;
  #maxWaiting: number;
  #running = 0;
  #waiting: (() => void)[] = [];
  #cacheKey = crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, false, ["sign"]);

  /** Make a checker with its own cache. */
  constructor(options: SecretCheckerOptions = {}) {
    this.#cacheSize = options.cacheSize ?? 4096;
    this.#concurrency = options.concurrency ?? 2;
    this.#maxWaiting = options.maxWaiting ?? 64;
  }

  /** Whether `offered` matches `stored`; a malformed stored secret matches nothing. */
  async check(stored: string, offered: string): Promise<boolean> {
    let parsed: Pbkdf2Secret | undefined;
    try {
      parsed = parseStored(stored);
    } catch {
      return false;
    }
    const tag = new Uint8Array(
      await crypto.subtle.sign("HMAC", await this.#cacheKey, encoder.encode(offered)),
    );
    if (!parsed) {
      const expected = new Uint8Array(
        await crypto.subtle.sign("HMAC", await this.#cacheKey, encoder.encode(stored)),
      );
      return constantTimeEqual(tag, expected);
    }
    const key = `${stored}\0${encodeBase64url(tag)}`;
    const known = this.#cache.get(key);
    if (known !== undefined) return known;
    if (!await this.#turn()) return false;
    let ok: boolean;
    try {
      ok = constantTimeEqual(await pbkdf2(offered, parsed.salt, parsed.iterations), parsed.hash);
    } finally {
      const next = this.#waiting.shift();
      if (next) next(); // the slot passes straight to the next in line
      else this.#running--;
    }
    if (this.#cache.size >= this.#cacheSize) {
      this.#cache.delete(this.#cache.keys().next().value!);
    }
    this.#cache.set(key, ok);
    return ok;
  }

  /** Wait for a derivation slot; false when too many are already waiting. */
  async #turn(): Promise<boolean> {
    if (this.#running < this.#concurrency) {
      this.#running++;
      return true;
    }
    if (this.#waiting.length >= this.#maxWaiting) return false;
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
    return true;
  }
}
