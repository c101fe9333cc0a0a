/** Writing TS packets: headers, adaptation fields (flags, PCR, stuffing) and PES packetization. */

import { TS_PACKET_SIZE } from "./constants.ts";
import { writePcr } from "./_timestamp.ts";

/** Payload bytes of a TS packet without an adaptation field. */
export const PAYLOAD_MAX = TS_PACKET_SIZE - 4;

/** Adaptation field flag: discontinuity_indicator. */
export const AF_DISCONTINUITY = 0x80;
/** Adaptation field flag: random_access_indicator. */
export const AF_RANDOM_ACCESS = 0x40;
/** Adaptation field flag: PCR_flag. */
export const AF_PCR = 0x10;

/** Bytes of adaptation field (length byte included) that `flags` need, before stuffing. */
export function adaptationSize(flags: number): number {
  if (flags === 0) return 0;
  return flags & AF_PCR ? 8 : 2;
}

/** Packets needed for `length` payload bytes when the first packet carries `flags`. */
export function packetCount(length: number, flags: number): number {
  const first = PAYLOAD_MAX - adaptationSize(flags);
  return length <= first ? 1 : 1 + Math.ceil((length - first) / PAYLOAD_MAX);
}

/**
 * Packetizes the `length` bytes at `out[src..]` into packets written from
 * `out[pos]` on (`pos + packets * 188 === src + length`, so the payload moves
 * forward in place without a second buffer). The first packet has
 * payload_unit_start_indicator set and an adaptation field with `flags`
 * (`pcr` when {@linkcode AF_PCR} is set); the last is stuffed through its
 * adaptation field. Returns the continuity counter after the last packet.
 */
export function writePayloadPackets(
  out: Uint8Array,
  pos: number,
  src: number,
  length: number,
  pid: number,
  cc: number,
  flags: number,
  pcr: number,
): number {
  let remaining = length;
  let first = true;
  while (remaining > 0) {
    const baseAf = first ? adaptationSize(flags) : 0;
    const take = Math.min(remaining, PAYLOAD_MAX - baseAf);
    const af = PAYLOAD_MAX - take; // adaptation field bytes including stuffing
    out[pos] = 0x47;
    out[pos + 1] = (first ? 0x40 : 0) | (pid >> 8);
    out[pos + 2] = pid & 0xff;
    out[pos + 3] = (af > 0 ? 0x30 : 0x10) | cc;
    if (af > 0) writeAdaptationField(out, pos + 4, af, first ? flags : 0, pcr);
    out.copyWithin(pos + 4 + af, src, src + take);
    src += take;
    remaining -= take;
    pos += TS_PACKET_SIZE;
    cc = (cc + 1) & 15;
    first = false;
  }
  return cc;
}

/** Writes an adaptation-field-only packet carrying a PCR (the continuity counter is not incremented). */
export function writePcrPacket(
  out: Uint8Array,
  pos: number,
  pid: number,
  cc: number,
  flags: number,
  pcr: number,
): void {
  out[pos] = 0x47;
  out[pos + 1] = pid >> 8;
  out[pos + 2] = pid & 0xff;
  out[pos + 3] = 0x20 | ((cc + 15) & 15);
  writeAdaptationField(out, pos + 4, PAYLOAD_MAX, flags | AF_PCR, pcr);
}

/** Writes an adaptation field of `size` bytes (length byte included) at `out[pos]`. */
function writeAdaptationField(
  out: Uint8Array,
  pos: number,
  size: number,
  flags: number,
  pcr: number,
): void {
  out[pos] = size - 1;
  if (size === 1) return;
  out[pos + 1] = flags;
  let p = pos + 2;
  if (flags & AF_PCR) {
    writePcr(out, p, pcr);
    p += 6;
  }
  out.fill(0xff, p, pos + size);
}
