/**
 * The server side of the RTMP handshake: C0+C1 in, S0+S1+S2 out, in both the
 * simple form and the digest form that Flash-era clients (and ffmpeg) use.
 *
 * @module
 */

import { createHmac } from "node:crypto";
import { RtmpError } from "./error.ts";

/** The size of C1, C2, S1 and S2. */
export const HANDSHAKE_SIZE = 1536;
/** The only RTMP version accepted in C0 (6 and 8 are the encrypted RTMPE variants). */
export const RTMP_VERSION = 3;

const DIGEST_SIZE = 32;
/** The digest block's offset field selects a position among 728 within the 764-byte block. */
const DIGEST_SPAN = 728;
/** Offsets of the digest block in C1/S1: second block (scheme 0) and first block (scheme 1). */
const DIGEST_BLOCKS = [772, 8];
/** The version S1 announces when it carries a digest (clients validate it when byte 0 >= 3). */
const SERVER_VERSION = [4, 5, 0, 1];

const SHARED_TAIL = [
  0xf0,
  0xee,
  0xc2,
  0x4a,
  0x80,
  0x68,
  0xbe,
  0xe8,
  0x2e,
  0x00,
  0xd0,
  0xd1,
  0x02,
  0x9e,
  0x7e,
  0x57,
  0x6e,
  0xec,
  0x5d,
  0x2d,
  0x29,
  0x80,
  0x6f,
  0xab,
  0x93,
  0xb8,
  0xe6,
  0x36,
  0xcf,
  0xeb,
  0x31,
  0xae,
];
const encoder = new TextEncoder();
/** The client's key; C1 digests use its 30-byte text part. */
const PLAYER_KEY = new Uint8Array([
  ...encoder.encode("Genuine Adobe Flash Player 001"),
  ...SHARED_TAIL,
]);
/** The server's key; S1 digests use its 36-byte text part, S2 the whole key. */
const SERVER_KEY = new Uint8Array([
  ...encoder.encode("Genuine Adobe Flash Media Server 001"),
  ...SHARED_TAIL,
]);

/** Options for {@linkcode serverHandshake}. */
export interface HandshakeOptions {
  /** Fills S1/S2 random bytes; default `crypto.getRandomValues`. Tests pass a fixed one. */
  random?: (buf: Uint8Array) => void;
}

/**
 * Answer a client's C0+C1 (1537 bytes) with S0+S1+S2 (3073 bytes).
 *
 * When C1 carries a valid digest (HMAC-SHA256 with the Flash Player key, in either
 * block order), S1 carries a digest made with the server key in the same block
 * order and S2 is signed with a key derived from the client's digest. Otherwise S1
 * has a zero version and S2 echoes C1 (the simple handshake). A C0 other than
 * version 3 (for example RTMPE) throws {@linkcode RtmpError}.
 *
 * @example
 * ```ts
 * import { HANDSHAKE_SIZE, serverHandshake } from "@arcly/stream/rtmp";
 *
 * const c0c1 = new Uint8Array(1 + HANDSHAKE_SIZE);
 * c0c1[0] = 3;
 * const s0s1s2 = serverHandshake(c0c1);
 * s0s1s2.length; // 3073
 * ```
 */
export function serverHandshake(c0c1: Uint8Array, opts: HandshakeOptions = {}): Uint8Array {
  if (c0c1.length !== 1 + HANDSHAKE_SIZE) {
    throw new RangeError(`C0+C1 must be ${1 + HANDSHAKE_SIZE} bytes, got ${c0c1.length}`);
  }
  const version = c0c1[0];
  if (version !== RTMP_VERSION) {
    const hint = version === 6 || version === 8 ? " (encrypted RTMPE is not supported)" : "";
    throw new RtmpError(`unsupported RTMP version ${version} in C0${hint}`);
  }
  const random = opts.random ?? ((b: Uint8Array) => crypto.getRandomValues(b));
  const c1 = c0c1.subarray(1);
  const out = new Uint8Array(1 + 2 * HANDSHAKE_SIZE);
  out[0] = RTMP_VERSION;
  const s1 = out.subarray(1, 1 + HANDSHAKE_SIZE);
  const s2 = out.subarray(1 + HANDSHAKE_SIZE);
  random(s1);
  random(s2);
  s1.fill(0, 0, 8);

  const clientDigest = findDigest(c1, PLAYER_KEY.subarray(0, 30));
  if (clientDigest === undefined) {
    s2.set(c1);
    return out;
  }
  s1.set(SERVER_VERSION, 4);
  const block = clientDigest < DIGEST_BLOCKS[0] ? DIGEST_BLOCKS[1] : DIGEST_BLOCKS[0];
  const at = digestPosition(s1, block);
  s1.set(digest(s1, at, SERVER_KEY.subarray(0, 36)), at);

  const key = hmac(SERVER_KEY, c1.subarray(clientDigest, clientDigest + DIGEST_SIZE));
  s2.set(hmac(key, s2.subarray(0, HANDSHAKE_SIZE - DIGEST_SIZE)), HANDSHAKE_SIZE - DIGEST_SIZE);
  return out;
}

/** Where a valid digest made with `key` sits in a C1/S1 packet (block at 772, then at 8). */
function findDigest(packet: Uint8Array, key: Uint8Array): number | undefined {
  for (const block of DIGEST_BLOCKS) {
    const at = digestPosition(packet, block);
    const expected = digest(packet, at, key);
    if (expected.every((b, i) => b === packet[at + i])) return at;
  }
  return undefined;
}

/** The digest position for the block at `block`: its first 4 bytes summed, mod 728, past them. */
function digestPosition(packet: Uint8Array, block: number): number {
  const sum = packet[block] + packet[block + 1] + packet[block + 2] + packet[block + 3];
  return block + 4 + sum % DIGEST_SPAN;
}

/** HMAC-SHA256 of a handshake packet with the 32 bytes at `at` left out. */
function digest(packet: Uint8Array, at: number, key: Uint8Array): Uint8Array {
  return new Uint8Array(
    createHmac("sha256", key)
      .update(packet.subarray(0, at))
      .update(packet.subarray(at + DIGEST_SIZE))
      .digest(),
  );
}

function hmac(key: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac("sha256", key).update(data).digest());
}
