/**
 * Joining byte arrays, for the HTTP code that assembles heads and bodies.
 *
 * @module
 */

/** `parts` one after the other in one array (a single part is returned as it is). */
export function joinBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  let total = 0;
  for (const part of parts) total += part.length;
  const out = new Uint8Array(total);
  let o = 0;
  for (const part of parts) {
    out.set(part, o);
    o += part.length;
  }
  return out;
}
