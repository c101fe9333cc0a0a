/**
 * The SRT Key Material message (draft-sharabayko-srt §3.2.2): the salt and the wrapped
 * stream encrypting keys (SEKs) a caller announces in its handshake (KMREQ) and a sender
 * announces again when it refreshes its key (the KMREQ control message). The listener
 * answers with the same bytes (KMRSP).
 *
 * @module
 */

import { SrtError } from "./error.ts";
import { RejectReason } from "./handshake.ts";
import { readU32, writeU32 } from "./_wire.ts";

/**
 * Which key a data packet is encrypted with (the `KK` bits of its header, and of a Key
 * Material message: which keys it carries).
 *
 * @example
 * ```ts
 * import { KeyIndex } from "@arcly/stream/srt";
 *
 * KeyIndex.EVEN | KeyIndex.ODD; // 3: both keys, during a key refresh
 * ```
 */
export const KeyIndex = {
  /** Not encrypted. */
  NONE: 0,
  /** The even key. */
  EVEN: 1,
  /** The odd key. */
  ODD: 2,
} as const;

/** A parsed Key Material message. */
export interface KeyMaterial {
  /** Which keys the message carries: {@linkcode KeyIndex} bits (1, 2 or 3). */
  keys: number;
  /** Key length in bytes: 16, 24 or 32 (AES-128, AES-192, AES-256). */
  keyLength: number;
  /** The 16-byte salt: the nonce of AES-CTR and, by its last 8 bytes, of PBKDF2. */
  salt: Uint8Array;
  /** The SEKs (even first) wrapped with the passphrase's key (RFC 3394): 8 + n × keyLength bytes. */
  wrapped: Uint8Array;
}

/** Bytes before the salt. */
const KM_HEADER = 16;
const SALT_LENGTH = 16;
/** Version 1, packet type 2 (Key Material), then the signature 0x2029 ("HAI" in PnP Vendor ID). */
const KM_START = 0x12202900;
const CIPHER_AES_CTR = 2;
const STREAM_ENCAPSULATION_SRT = 2;

/**
 * Parses a Key Material message (AES-CTR, 16-byte salt).
 *
 * @throws {SrtError} (reason `ROGUE`) when it is malformed, uses another cipher, or its
 * length does not match the keys it announces.
 *
 * @example
 * ```ts
 * import { encodeKeyMaterial, parseKeyMaterial } from "@arcly/stream/srt";
 *
 * const km = encodeKeyMaterial({
 *   keys: 1, keyLength: 16, salt: new Uint8Array(16), wrapped: new Uint8Array(24),
 * });
 * parseKeyMaterial(km).keyLength; // 16
 * ```
 */
export function parseKeyMaterial(bytes: Uint8Array): KeyMaterial {
  if (bytes.length < KM_HEADER) throw malformed(`${bytes.length} bytes`);
  const start = readU32(bytes, 0);
  if ((start & 0xffffff00) >>> 0 !== KM_START) {
    throw malformed(`starts with ${start.toString(16).padStart(8, "0")}`);
  }
  const keys = start & 3;
  if (keys === 0 || (start & 0xfc) !== 0) throw malformed("no key announced");
  if (bytes[8] !== CIPHER_AES_CTR) throw malformed(`cipher ${bytes[8]} (only AES-CTR, 2)`);
  if (bytes[9] !== 0) throw malformed(`authentication ${bytes[9]}`);
  if (bytes[10] !== STREAM_ENCAPSULATION_SRT && bytes[10] !== 0) {
    throw malformed(`stream encapsulation ${bytes[10]}`);
  }
  const saltLength = bytes[14] * 4;
  const keyLength = bytes[15] * 4;
  if (saltLength !== SALT_LENGTH) throw malformed(`salt of ${saltLength} bytes`);
  if (keyLength !== 16 && keyLength !== 24 && keyLength !== 32) {
    throw malformed(`key of ${keyLength} bytes`);
  }
  const count = keys === 3 ? 2 : 1;
  const expected = KM_HEADER + saltLength + 8 + count * keyLength;
  if (bytes.length !== expected) {
    throw malformed(`${bytes.length} bytes, ${expected} expected for ${count} key(s)`);
  }
  return {
    keys,
    keyLength,
    salt: bytes.slice(KM_HEADER, KM_HEADER + saltLength),
    wrapped: bytes.slice(KM_HEADER + saltLength),
  };
}

/**
 * Encodes a Key Material message as libsrt writes it (AES-CTR, SRT encapsulation).
 *
 * @example
 * ```ts
 * import { encodeKeyMaterial } from "@arcly/stream/srt";
 *
 * const km = encodeKeyMaterial({
 *   keys: 3, keyLength: 16, salt: new Uint8Array(16), wrapped: new Uint8Array(40),
 * });
 * km.length; // 72
 * ```
 */
export function encodeKeyMaterial(km: KeyMaterial): Uint8Array {
  const out = new Uint8Array(KM_HEADER + km.salt.length + km.wrapped.length);
  writeU32(out, 0, (KM_START | (km.keys & 3)) >>> 0);
  out[8] = CIPHER_AES_CTR;
  out[10] = STREAM_ENCAPSULATION_SRT;
  out[14] = km.salt.length / 4;
  out[15] = km.keyLength / 4;
  out.set(km.salt, KM_HEADER);
  out.set(km.wrapped, KM_HEADER + km.salt.length);
  return out;
}

function malformed(why: string): SrtError {
  return new SrtError(`malformed key material: ${why}`, RejectReason.ROGUE);
}
