/** Big-endian integer access shared by the RTP and RTCP code. */

/** Reads a big-endian 32-bit unsigned integer. */
export function readUint32(data: Uint8Array, offset: number): number {
  return ((data[offset] << 24) | (data[offset + 1] << 16) | (data[offset + 2] << 8) |
    data[offset + 3]) >>> 0;
}

/** Writes `value` as a big-endian 32-bit unsigned integer. */
export function writeUint32(out: Uint8Array, offset: number, value: number): void {
  out[offset] = (value >>> 24) & 0xff;
  out[offset + 1] = (value >>> 16) & 0xff;
  out[offset + 2] = (value >>> 8) & 0xff;
  out[offset + 3] = value & 0xff;
}
