/**
 * The lists of NAL units in AVCDecoderConfigurationRecord and
 * HEVCDecoderConfigurationRecord: each unit after a 16-bit big-endian length.
 *
 * @module
 */

/**
 * Reads `count` NAL units, each after a 16-bit length, from `record` at `pos`;
 * pushes views of them onto `into` (when given) and returns the position after
 * the last one. `what` names the list in errors (e.g. `avcC SPS`).
 *
 * @throws {RangeError} when a length or a unit runs past the end of `record`.
 */
export function readNalList(
  record: Uint8Array,
  pos: number,
  count: number,
  into: Uint8Array[] | undefined,
  what: string,
): number {
  for (let i = 0; i < count; i++) {
    if (pos + 2 > record.length) throw new RangeError(`${what} truncated at NAL unit ${i}`);
    const len = (record[pos] << 8) | record[pos + 1];
    pos += 2;
    if (pos + len > record.length) {
      throw new RangeError(`${what} NAL unit ${i} overruns the record`);
    }
    into?.push(record.subarray(pos, pos + len));
    pos += len;
  }
  return pos;
}

/**
 * Writes `nals`, each after its 16-bit length, into `out` at `pos` and returns
 * the position after the last one. The caller sized `out` and checked that
 * every unit is shorter than 64 KiB.
 */
export function writeNalList(out: Uint8Array, pos: number, nals: readonly Uint8Array[]): number {
  for (const nal of nals) {
    out[pos] = nal.length >> 8;
    out[pos + 1] = nal.length & 0xff;
    out.set(nal, pos + 2);
    pos += 2 + nal.length;
  }
  return pos;
}
