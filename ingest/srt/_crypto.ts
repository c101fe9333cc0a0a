/**
 * SRT encryption through WebCrypto: the key encrypting key from a passphrase (PBKDF2,
 * HMAC-SHA1, 2048 iterations, the salt's last 8 bytes), the stream encrypting keys
 * (SEKs) wrapped with it (AES key wrap, RFC 3394), and AES-CTR over each data packet's
 * payload with the counter block libsrt uses: the salt's first 14 bytes XOR the packet's
 * sequence number at bytes 10 to 13, a block counter in the last two.
 */

import { SrtError } from "./error.ts";
import { RejectReason } from "./handshake.ts";
import { encodeKeyMaterial, KeyIndex, type KeyMaterial } from "./key_material.ts";
import { SRT_HEADER_SIZE } from "./packet.ts";

const subtle = crypto.subtle;
const PBKDF2_ITERATIONS = 2048;
const PBKDF2_SALT = 8;
/** Raw key bytes pass through wrap and unwrap as an HMAC key, the one kind of any length. */
const RAW_KEY = (bytes: number) => ({ name: "HMAC", hash: "SHA-256", length: bytes * 8 });
/** The KK bits in byte 4 of a data packet. */
const KK_SHIFT = 3;
const KK_MASK = 3 << KK_SHIFT;

/** The shortest passphrase libsrt accepts. */
export const MIN_PASSPHRASE = 10;
/** The longest passphrase libsrt accepts. */
export const MAX_PASSPHRASE = 79;

/** The keys of one encrypted connection, both directions. */
export class SrtCrypto {
  /** Key length in bytes. */
  readonly keyLength: number;
  /** The salt of the session's Key Material. */
  readonly salt: Uint8Array;
  readonly #kek: CryptoKey;
  /** Index 1: the even key, 2: the odd key (index 0 unused). */
  readonly #keys: (CryptoKey | undefined)[] = [undefined, undefined, undefined];
  readonly #raw: (Uint8Array | undefined)[] = [undefined, undefined, undefined];
  /** The IV prefix: the salt's first 14 bytes. */
  readonly #nonce: Uint8Array;

  private constructor(kek: CryptoKey, salt: Uint8Array, keyLength: number) {
    this.#kek = kek;
    this.salt = salt;
    this.keyLength = keyLength;
    this.#nonce = salt.slice(0, 14);
  }

  /**
   * The session a caller's handshake Key Material opens with `passphrase`.
   *
   * @throws {SrtError} with reason `BADSECRET` when the keys do not unwrap (another
   * passphrase).
   */
  static async open(passphrase: string, km: KeyMaterial): Promise<SrtCrypto> {
    const kek = await deriveKek(passphrase, km.salt, km.keyLength);
    const session = new SrtCrypto(kek, km.salt, km.keyLength);
    await session.install(km);
    return session;
  }

  /**
   * A caller's side: a new session for `passphrase` with a random salt and even key, and
   * the Key Material its handshake announces.
   */
  static async create(
    passphrase: string,
    keyLength: number,
  ): Promise<{ session: SrtCrypto; km: Uint8Array }> {
    const salt = crypto.getRandomValues(new Uint8Array(16));
    const session = new SrtCrypto(await deriveKek(passphrase, salt, keyLength), salt, keyLength);
    const even = crypto.getRandomValues(new Uint8Array(keyLength));
    await session.#set(KeyIndex.EVEN, even);
    return { session, km: await session.#announce(KeyIndex.EVEN) };
  }

  /**
   * Take the keys a Key Material message carries (same salt and key length as the
   * session's). `inUse` is the key data arrives with: a message may repeat it, never
   * change it (that would be a replayed or forged message).
   *
   * @throws {SrtError} when they do not unwrap, the message belongs to another session or
   * changes the key in use.
   */
  async install(km: KeyMaterial, inUse: number = KeyIndex.NONE): Promise<void> {
    if (km.keyLength !== this.keyLength || !km.salt.every((b, i) => b === this.salt[i])) {
      throw new SrtError("key material of another session (salt or key length)");
    }
    let raw: Uint8Array;
    try {
      const key = await subtle.unwrapKey(
        "raw",
        km.wrapped as Uint8Array<ArrayBuffer>,
        this.#kek,
        "AES-KW",
        RAW_KEY(km.wrapped.length - 8),
        true,
        ["sign"],
      );
      raw = new Uint8Array(await subtle.exportKey("raw", key));
    } catch {
      throw new SrtError("the keys do not unwrap: wrong passphrase", RejectReason.BADSECRET);
    }
    const announced: [number, Uint8Array][] = [];
    let at = 0;
    for (const index of [KeyIndex.EVEN, KeyIndex.ODD]) {
      if (!(km.keys & index)) continue;
      announced.push([index, raw.slice(at, at + this.keyLength)]);
      at += this.keyLength;
    }
    for (const [index, key] of announced) {
      if (index === inUse && this.#raw[index] && !this.sameKey(index, key)) {
        throw new SrtError("key material that changes the key in use (replayed or forged)");
      }
    }
    for (const [index, key] of announced) {
      if (!this.sameKey(index, key)) await this.#set(index, key);
    }
  }

  /** Whether the key `index` (1 even, 2 odd) is known. */
  has(index: number): boolean {
    return this.#keys[index] !== undefined;
  }

  /** Whether the raw key `index` equals `other`'s (a repeated announcement). */
  sameKey(index: number, other: Uint8Array): boolean {
    const mine = this.#raw[index];
    return mine !== undefined && mine.length === other.length &&
      mine.every((b, i) => b === other[i]);
  }

  /**
   * Make a fresh key for the slot `index` and return the Key Material that announces
   * both keys (as a sender does ahead of a switch).
   */
  async refresh(index: number): Promise<Uint8Array> {
    await this.#set(index, crypto.getRandomValues(new Uint8Array(this.keyLength)));
    return await this.#announce(KeyIndex.EVEN | KeyIndex.ODD);
  }

  /** The Key Material message carrying the keys `which` ({@linkcode KeyIndex} bits). */
  async #announce(which: number): Promise<Uint8Array> {
    const keys = [KeyIndex.EVEN, KeyIndex.ODD].filter((i) => which & i).map((i) => this.#raw[i]!);
    const raw = new Uint8Array(keys.length * this.keyLength);
    keys.forEach((key, k) => raw.set(key, k * this.keyLength));
    const key = await subtle.importKey("raw", raw, RAW_KEY(raw.length), true, ["sign"]);
    const wrapped = new Uint8Array(await subtle.wrapKey("raw", key, this.#kek, "AES-KW"));
    return encodeKeyMaterial({ keys: which, keyLength: this.keyLength, salt: this.salt, wrapped });
  }

  /**
   * A data packet (header and clear payload) encrypted with key `index`: a new packet
   * whose header says which key. The input is read before this returns.
   */
  async encrypt(packet: Uint8Array, index: number): Promise<Uint8Array> {
    const key = this.#keys[index];
    if (!key) throw new SrtError(`no key ${index} to encrypt with`);
    const header = packet.slice(0, SRT_HEADER_SIZE);
    header[4] = (header[4] & ~KK_MASK) | (index << KK_SHIFT);
    const sealed = subtle.encrypt(
      this.#counter(packet),
      key,
      packet.subarray(SRT_HEADER_SIZE) as Uint8Array<ArrayBuffer>,
    );
    return join(header, await sealed);
  }

  /**
   * A received data packet decrypted (its KK bits cleared), or undefined when it names a
   * key not known. The input is read before this returns.
   */
  decrypt(packet: Uint8Array): Promise<Uint8Array> | undefined {
    const key = this.#keys[keyIndex(packet)];
    if (!key) return undefined;
    const header = packet.slice(0, SRT_HEADER_SIZE);
    header[4] &= ~KK_MASK;
    const opened = subtle.decrypt(
      this.#counter(packet),
      key,
      packet.subarray(SRT_HEADER_SIZE) as Uint8Array<ArrayBuffer>,
    );
    return opened.then((plain) => join(header, plain));
  }

  #counter(packet: Uint8Array): AesCtrParams {
    const counter = new Uint8Array(16);
    counter.set(this.#nonce);
    for (let i = 0; i < 4; i++) counter[10 + i] ^= packet[i];
    // The block counter lives in bytes 14-15 and a payload never fills 2^16 blocks, so a
    // 64-bit counter (what Deno supports) runs over the same blocks.
    return { name: "AES-CTR", counter, length: 64 };
  }

  async #set(index: number, raw: Uint8Array): Promise<void> {
    this.#keys[index] = await subtle.importKey(
      "raw",
      raw as Uint8Array<ArrayBuffer>,
      "AES-CTR",
      false,
      ["encrypt", "decrypt"],
    );
    this.#raw[index] = raw;
  }
}

/** The KK bits of a data packet: 0 clear, 1 even key, 2 odd key. */
export function keyIndex(packet: Uint8Array): number {
  return (packet[4] & KK_MASK) >> KK_SHIFT;
}

/** The key encrypting key of `passphrase` for a session's salt. */
async function deriveKek(
  passphrase: string,
  salt: Uint8Array,
  keyLength: number,
): Promise<CryptoKey> {
  const secret = await subtle.importKey(
    "raw",
    new TextEncoder().encode(passphrase),
    "PBKDF2",
    false,
    ["deriveBits"],
  );
  const bits = await subtle.deriveBits(
    {
      name: "PBKDF2",
      hash: "SHA-1",
      salt: salt.slice(salt.length - PBKDF2_SALT),
      iterations: PBKDF2_ITERATIONS,
    },
    secret,
    keyLength * 8,
  );
  return await subtle.importKey("raw", bits, "AES-KW", false, ["wrapKey", "unwrapKey"]);
}

function join(header: Uint8Array, body: ArrayBuffer): Uint8Array {
  const out = new Uint8Array(SRT_HEADER_SIZE + body.byteLength);
  out.set(header);
  out.set(new Uint8Array(body), SRT_HEADER_SIZE);
  return out;
}
