/** Program specific information: PAT and PMT sections, written into packets and parsed back. */

import { TS_PACKET_SIZE } from "./constants.ts";
import { crc32Mpeg2 } from "./_crc32.ts";

/** The program_number of the single program the muxer writes. */
const PROGRAM_NUMBER = 1;
/** PSI sections of PAT and PMT are at most 1024 bytes (section_length <= 1021). */
export const MAX_SECTION = 1024;

/** One elementary stream of a PMT. */
export interface PmtStream {
  /** `stream_type`. */
  streamType: number;
  /** `elementary_PID`. */
  pid: number;
  /** The ES_info descriptors, raw. */
  descriptors: Uint8Array;
}

/** A parsed program map table. */
export interface Pmt {
  /** `version_number`. */
  version: number;
  /** `PCR_PID`. */
  pcrPid: number;
  /** The elementary streams in PMT order. */
  streams: PmtStream[];
}

/** A 188-byte packet carrying the PAT that points program 1 at `pmtPid` (continuity counter 0). */
export function patPacket(pmtPid: number): Uint8Array {
  const body = new Uint8Array(4);
  body[0] = PROGRAM_NUMBER >> 8;
  body[1] = PROGRAM_NUMBER & 0xff;
  body[2] = 0xe0 | (pmtPid >> 8);
  body[3] = pmtPid & 0xff;
  return sectionPacket(0x0000, 0x00, 1, 0, body);
}

/** A 188-byte packet carrying the PMT of program 1 (continuity counter 0). */
export function pmtPacket(
  pmtPid: number,
  version: number,
  pcrPid: number,
  streams: readonly PmtStream[],
): Uint8Array {
  let size = 4;
  for (const s of streams) size += 5 + s.descriptors.length;
  const body = new Uint8Array(size);
  body[0] = 0xe0 | (pcrPid >> 8);
  body[1] = pcrPid & 0xff;
  body[2] = 0xf0; // program_info_length 0
  body[3] = 0;
  let p = 4;
  for (const s of streams) {
    body[p] = s.streamType;
    body[p + 1] = 0xe0 | (s.pid >> 8);
    body[p + 2] = s.pid & 0xff;
    body[p + 3] = 0xf0 | (s.descriptors.length >> 8);
    body[p + 4] = s.descriptors.length & 0xff;
    body.set(s.descriptors, p + 5);
    p += 5 + s.descriptors.length;
  }
  return sectionPacket(pmtPid, 0x02, PROGRAM_NUMBER, version, body);
}

/** Wraps a long-form section (header, `body`, CRC) into one stuffed packet. */
function sectionPacket(
  pid: number,
  tableId: number,
  extension: number,
  version: number,
  body: Uint8Array,
): Uint8Array {
  const sectionLength = 5 + body.length + 4;
  if (sectionLength + 3 > TS_PACKET_SIZE - 5) {
    throw new RangeError(`PSI section of ${sectionLength + 3} bytes does not fit one packet`);
  }
  const pkt = new Uint8Array(TS_PACKET_SIZE).fill(0xff);
  pkt[0] = 0x47;
  pkt[1] = 0x40 | (pid >> 8);
  pkt[2] = pid & 0xff;
  pkt[3] = 0x10;
  pkt[4] = 0; // pointer_field
  const s = 5;
  pkt[s] = tableId;
  pkt[s + 1] = 0xb0 | (sectionLength >> 8);
  pkt[s + 2] = sectionLength & 0xff;
  pkt[s + 3] = extension >> 8;
  pkt[s + 4] = extension & 0xff;
  pkt[s + 5] = 0xc1 | ((version & 31) << 1); // current_next_indicator = 1
  pkt[s + 6] = 0; // section_number
  pkt[s + 7] = 0; // last_section_number
  pkt.set(body, s + 8);
  const end = s + 3 + sectionLength;
  const crc = crc32Mpeg2(pkt, s, end - 4);
  pkt[end - 4] = crc >>> 24;
  pkt[end - 3] = (crc >>> 16) & 0xff;
  pkt[end - 2] = (crc >>> 8) & 0xff;
  pkt[end - 1] = crc & 0xff;
  return pkt;
}

/**
 * The PMT PID of the first program in a complete PAT section, or -1 when the
 * section is not a current PAT or names no program.
 */
export function parsePat(section: Uint8Array): number {
  if (section[0] !== 0x00 || !(section[5] & 1)) return -1;
  const end = section.length - 4;
  for (let p = 8; p + 4 <= end; p += 4) {
    const program = (section[p] << 8) | section[p + 1];
    if (program !== 0) return ((section[p + 2] & 0x1f) << 8) | section[p + 3];
  }
  return -1;
}

/** Parses a complete PMT section (CRC already checked); undefined when it is not a current PMT. */
export function parsePmt(section: Uint8Array): Pmt | undefined {
  if (section[0] !== 0x02 || !(section[5] & 1) || section.length < 16) return undefined;
  const end = section.length - 4;
  const pcrPid = ((section[8] & 0x1f) << 8) | section[9];
  let p = 12 + (((section[10] & 0x0f) << 8) | section[11]);
  const streams: PmtStream[] = [];
  while (p + 5 <= end) {
    const infoLength = ((section[p + 3] & 0x0f) << 8) | section[p + 4];
    if (p + 5 + infoLength > end) return undefined;
    streams.push({
      streamType: section[p],
      pid: ((section[p + 1] & 0x1f) << 8) | section[p + 2],
      descriptors: section.slice(p + 5, p + 5 + infoLength),
    });
    p += 5 + infoLength;
  }
  return { version: (section[5] >> 1) & 31, pcrPid, streams };
}

/** The payload of the first descriptor with `tag` in `descriptors`, or undefined. */
export function findDescriptor(descriptors: Uint8Array, tag: number): Uint8Array | undefined {
  let p = 0;
  while (p + 2 <= descriptors.length) {
    const len = descriptors[p + 1];
    if (p + 2 + len > descriptors.length) return undefined;
    if (descriptors[p] === tag) return descriptors.subarray(p + 2, p + 2 + len);
    p += 2 + len;
  }
  return undefined;
}

/**
 * Reassembles PSI sections of one PID from packet payloads (pointer_field,
 * sections spanning packets, several sections per packet). Sections with a bad
 * CRC or a length over {@linkcode MAX_SECTION} are dropped and counted.
 */
export class SectionAssembler {
  readonly #buf = new Uint8Array(MAX_SECTION);
  #len = 0;
  #need = 0; // bytes of the section being assembled; 0 when idle, -1 before its length is known
  /** Sections dropped for a bad CRC or size. */
  errors = 0;

  /** Forgets a partial section (after a continuity error). */
  reset(): void {
    this.#len = 0;
    this.#need = 0;
  }

  /**
   * Feeds the payload `buf[start..end)` of one packet; `unitStart` is its
   * payload_unit_start_indicator. Calls `onSection` with each complete,
   * CRC-checked section (a view valid only during the call).
   */
  push(
    buf: Uint8Array,
    start: number,
    end: number,
    unitStart: boolean,
    onSection: (section: Uint8Array) => void,
  ): void {
    let p = start;
    if (unitStart) {
      if (p >= end) return;
      const pointer = buf[p++];
      if (p + pointer > end) {
        this.reset();
        this.errors++;
        return;
      }
      if (this.#need !== 0) this.#append(buf, p, p + pointer, onSection);
      this.reset();
      p += pointer;
      while (p < end && buf[p] !== 0xff) {
        p = this.#begin(buf, p, end, onSection);
        if (this.#need !== 0) return; // continues in the next packet
      }
    } else if (this.#need !== 0) {
      this.#append(buf, p, end, onSection);
    }
  }

  /** Starts a section at `buf[p]`; returns the position after what it consumed. */
  #begin(
    buf: Uint8Array,
    p: number,
    end: number,
    onSection: (section: Uint8Array) => void,
  ): number {
    if (end - p < 3) {
      // The section header itself spans packets: keep the bytes and size it later.
      this.#buf.set(buf.subarray(p, end));
      this.#len = end - p;
      this.#need = -1;
      return end;
    }
    const total = 3 + (((buf[p + 1] & 0x0f) << 8) | buf[p + 2]);
    if (total > MAX_SECTION || total < 12) {
      this.errors++;
      return end;
    }
    this.#need = total;
    this.#len = 0;
    const take = Math.min(total, end - p);
    this.#append(buf, p, p + take, onSection);
    return p + take;
  }

  #append(
    buf: Uint8Array,
    start: number,
    end: number,
    onSection: (section: Uint8Array) => void,
  ): void {
    if (this.#need < 0) {
      // Complete the 3-byte header first.
      const missing = Math.min(3 - this.#len, end - start);
      this.#buf.set(buf.subarray(start, start + missing), this.#len);
      this.#len += missing;
      start += missing;
      if (this.#len < 3) return;
      const total = 3 + (((this.#buf[1] & 0x0f) << 8) | this.#buf[2]);
      if (total > MAX_SECTION || total < 12) {
        this.errors++;
        this.reset();
        return;
      }
      this.#need = total;
    }
    const take = Math.min(this.#need - this.#len, end - start);
    this.#buf.set(buf.subarray(start, start + take), this.#len);
    this.#len += take;
    if (this.#len < this.#need) return;
    const section = this.#buf.subarray(0, this.#need);
    this.reset();
    if (crc32Mpeg2(section, 0, section.length) !== 0) {
      this.errors++;
      return;
    }
    onSection(section);
  }
}
