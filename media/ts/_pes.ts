/** PES packet headers (ISO/IEC 13818-1 2.4.3.6): writing for the muxer, parsing for the demuxer. */

import { readTimestamp, writeTimestamp } from "./_timestamp.ts";

/** stream_id of the first video stream. */
export const STREAM_ID_VIDEO = 0xe0;
/** stream_id of the first MPEG audio stream (AAC too). */
export const STREAM_ID_AUDIO = 0xc0;
/** stream_id private_stream_1 (Opus, as ffmpeg writes it). */
export const STREAM_ID_PRIVATE_1 = 0xbd;

/** Bytes of a PES header with a PTS, plus 5 when a DTS follows. */
export function pesHeaderSize(withDts: boolean): number {
  return withDts ? 19 : 14;
}

/**
 * Writes a PES header at `out[pos]` for `esLength` bytes of payload; `pts`
 * and `dts` are already wrapped to 33 bits, the DTS is written only when it
 * differs. `bounded` false writes PES_packet_length 0 (allowed for video).
 * Returns the header size.
 */
export function writePesHeader(
  out: Uint8Array,
  pos: number,
  streamId: number,
  pts: number,
  dts: number,
  esLength: number,
  bounded: boolean,
): number {
  const withDts = pts !== dts;
  const size = pesHeaderSize(withDts);
  const packetLength = size - 6 + esLength;
  const field = bounded && packetLength <= 0xffff ? packetLength : 0;
  out[pos] = 0;
  out[pos + 1] = 0;
  out[pos + 2] = 1;
  out[pos + 3] = streamId;
  out[pos + 4] = field >> 8;
  out[pos + 5] = field & 0xff;
  out[pos + 6] = 0x80; // '10', not scrambled, no priority, no alignment, no copyright, copy
  out[pos + 7] = withDts ? 0xc0 : 0x80;
  out[pos + 8] = size - 9;
  writeTimestamp(out, pos + 9, withDts ? 3 : 2, pts);
  if (withDts) writeTimestamp(out, pos + 14, 1, dts);
  return size;
}

/** What the demuxer needs from a PES header. */
export interface PesHeader {
  /** stream_id. */
  streamId: number;
  /** The 33-bit PTS, or -1 when absent. */
  pts: number;
  /** The 33-bit DTS (the PTS when absent, -1 when neither is present). */
  dts: number;
  /** Offset of the first payload byte. */
  payloadStart: number;
  /** Offset after the last payload byte. */
  payloadEnd: number;
}

/** stream_ids whose PES packets have no optional header (13818-1 table 2-21 exceptions). */
function hasNoOptionalHeader(id: number): boolean {
  return id === 0xbc || id === 0xbe || id === 0xbf || id === 0xf0 || id === 0xf1 ||
    id === 0xf2 || id === 0xf8 || id === 0xff;
}

/**
 * Parses the PES packet in `buf[0..length)`. Returns a reason string when the
 * packet is malformed or truncated.
 */
export function parsePesHeader(buf: Uint8Array, length: number): PesHeader | string {
  if (length < 6 || buf[0] !== 0 || buf[1] !== 0 || buf[2] !== 1) return "no PES start code";
  const streamId = buf[3];
  const declared = (buf[4] << 8) | buf[5];
  let payloadEnd = length;
  if (declared !== 0) {
    if (6 + declared > length) return `PES truncated: ${length} of ${6 + declared} bytes`;
    payloadEnd = 6 + declared;
  }
  if (hasNoOptionalHeader(streamId)) {
    return { streamId, pts: -1, dts: -1, payloadStart: 6, payloadEnd };
  }
  if (payloadEnd < 9 || (buf[6] & 0xc0) !== 0x80) return "PES optional header missing";
  const flags = buf[7] >> 6;
  const headerLength = buf[8];
  const payloadStart = 9 + headerLength;
  if (payloadStart > payloadEnd) return "PES header longer than the packet";
  let pts = -1;
  let dts = -1;
  if (flags === 2 || flags === 3) {
    if (headerLength < (flags === 3 ? 10 : 5)) return "PES header too short for its timestamps";
    pts = readTimestamp(buf, 9);
    dts = flags === 3 ? readTimestamp(buf, 14) : pts;
  } else if (flags === 1) {
    return "PES PTS_DTS_flags is forbidden value 1";
  }
  return { streamId, pts, dts, payloadStart, payloadEnd };
}
