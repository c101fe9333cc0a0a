/** Byte helpers shared by the tests. */

/**
 * Joins byte chunks into one new array.
 *
 * @example
 * ```ts
 * concat([new Uint8Array([1, 2]), new Uint8Array([3])]); // Uint8Array [1, 2, 3]
 * ```
 */
export function concat(chunks: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  let size = 0;
  for (const c of chunks) size += c.length;
  const out = new Uint8Array(size);
  let pos = 0;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

/**
 * Where `a` and `b` first differ: an index, the shorter length when one is a
 * prefix of the other, or -1 when they are equal. Cheap to report, unlike a
 * deep-equal diff of two large arrays.
 *
 * @example
 * ```ts
 * firstDifference(new Uint8Array([1, 2]), new Uint8Array([1, 3])); // 1
 * ```
 */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** Lower-case hex of `bytes`, no separators. */
export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Bytes from hex text; spaces are ignored. */
export function unhex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "");
  return Uint8Array.from(clean.match(/../g) ?? [], (h) => parseInt(h, 16));
}
