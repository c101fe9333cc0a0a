/**
 * Helpers for file contents given as one buffer or a list of chunks.
 *
 * @module
 */

import type { HlsFileData } from "./storage.ts";

/** The chunks of `data`, in order. */
export function chunksOf(data: HlsFileData): readonly Uint8Array[] {
  return data instanceof Uint8Array ? [data] : data;
}

/** The total size of `data` in bytes. */
export function byteLengthOf(data: HlsFileData): number {
  if (data instanceof Uint8Array) return data.byteLength;
  let size = 0;
  for (const c of data) size += c.byteLength;
  return size;
}

/** The bytes of `data` (its chunks back to back) in a new buffer. */
export function copyBytes(data: HlsFileData): Uint8Array {
  const out = new Uint8Array(byteLengthOf(data));
  let pos = 0;
  for (const c of chunksOf(data)) {
    out.set(c, pos);
    pos += c.byteLength;
  }
  return out;
}

/**
 * Appends `chunk` to `chunks`, widening the last chunk instead when `chunk`
 * directly follows it in the same buffer (as the TS encoder's slab views do),
 * so that a segment is a few large views rather than one per frame.
 */
export function appendChunk(chunks: Uint8Array[], chunk: Uint8Array): void {
  const last = chunks[chunks.length - 1];
  if (
    last !== undefined && last.buffer === chunk.buffer &&
    last.byteOffset + last.byteLength === chunk.byteOffset
  ) {
    chunks[chunks.length - 1] = new Uint8Array(
      last.buffer,
      last.byteOffset,
      last.byteLength + chunk.byteLength,
    );
  } else {
    chunks.push(chunk);
  }
}
