/**
 * Reading a request or response body with a bound: what a peer sends is never held past
 * the limit the reader set.
 *
 * @module
 */

import { joinBytes } from "./_bytes.ts";

/**
 * The bytes of `body`, or `undefined` (and the stream cancelled) as soon as more than
 * `max` bytes have come. An absent body is empty.
 *
 * @example
 * ```ts
 * import { readBoundedBody } from "@arcly/stream/http";
 *
 * await readBoundedBody(new Response("offer").body, 16); // Uint8Array of 5 bytes
 * await readBoundedBody(new Response("x".repeat(20)).body, 16); // undefined
 * ```
 */
export async function readBoundedBody(
  body: ReadableStream<Uint8Array> | null,
  max: number,
): Promise<Uint8Array | undefined> {
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  return joinBytes(chunks);
}
