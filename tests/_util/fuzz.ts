/** Bounded, seeded fuzzing helpers for parser tests. */

import assert from "node:assert/strict";

/** A deterministic PRNG (mulberry32) returning floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` random bytes from `rand`. */
export function randomBytes(rand: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (rand() * 256) | 0;
  return out;
}

/** A string of up to `maxLength` characters drawn from `alphabet` by `rand`. */
export function randomText(rand: () => number, alphabet: string, maxLength: number): string {
  let text = "";
  const n = Math.floor(rand() * (maxLength + 1));
  for (let i = 0; i < n; i++) text += alphabet[Math.floor(rand() * alphabet.length)];
  return text;
}

/** A copy of `data` with bit `bit` (0 = MSB of byte 0) flipped. */
export function flipBit(data: Uint8Array, bit: number): Uint8Array {
  const out = data.slice();
  out[bit >> 3] ^= 0x80 >> (bit & 7);
  return out;
}

/** Calls `fn`; it may return or throw a RangeError, nothing else. */
export function returnsOrRangeError(fn: () => unknown, what: string): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof RangeError)) {
      assert.fail(`${what}: expected RangeError, got ${e instanceof Error ? e.stack : String(e)}`);
    }
    assert.ok(e.message.length > 0, `${what}: RangeError without a message`);
  }
}

/**
 * Runs `parse` on `seed` with every bit flipped (or `maxFlips` sampled bits),
 * every truncation, and `randomCount` random inputs with the first
 * `keepPrefix` bytes of `seed`; each must return or throw a RangeError.
 */
export function fuzzParser(
  name: string,
  parse: (data: Uint8Array) => unknown,
  seed: Uint8Array,
  { keepPrefix = 0, randomCount = 2000, maxFlips = 4096, rngSeed = 1 } = {},
): void {
  const rand = prng(rngSeed);
  const bits = seed.length * 8;
  const step = Math.max(1, Math.ceil(bits / maxFlips));
  for (let bit = 0; bit < bits; bit += step) {
    returnsOrRangeError(() => parse(flipBit(seed, bit)), `${name} bit ${bit}`);
  }
  for (let len = 0; len < seed.length; len++) {
    returnsOrRangeError(() => parse(seed.subarray(0, len)), `${name} truncated to ${len}`);
  }
  for (let i = 0; i < randomCount; i++) {
    const data = randomBytes(rand, keepPrefix + ((rand() * 64) | 0));
    data.set(seed.subarray(0, keepPrefix));
    returnsOrRangeError(() => parse(data), `${name} random #${i}`);
  }
}
