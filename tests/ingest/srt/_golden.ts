/**
 * Packets libsrt 1.5.1 sent, captured on loopback through a UDP relay (ffmpeg 5.1 and
 * srt-live-transmit as callers, srt-live-transmit as listener). Hex, header included.
 */

import { unhex as hex } from "../../_util/bytes.ts";

/** ffmpeg's induction request (version 4, extension field 2, cookie 0). */
export const FFMPEG_INDUCTION = hex(
  "80000000 00000000 000002d1 00000000 00000004 00000002 7b085408 000005dc" +
    "00002000 00000001 39dadd6c 00000000 0100007f 00000000 00000000 00000000",
);

/** The libsrt listener's induction response: version 5, SRT magic, the cookie. */
export const LIBSRT_INDUCTION_RESPONSE = hex(
  "80000000 00000000 0040710f 39dadd6c 00000005 00004a17 7b085408 000005dc" +
    "00002000 00000001 39dadd6c 45f3de09 0100007f 00000000 00000000 00000000",
);

/**
 * ffmpeg's conclusion for `streamid=publish:live/abcdefg&latency=150000`: HSREQ (1.5.1,
 * flags 0xbf, 150/150 ms) and the Stream ID, 20 bytes in 5 byte-swapped words.
 */
export const FFMPEG_CONCLUSION = hex(
  "80000000 00000000 000015c1 00000000 00000005 00000005 7b085408 000005dc" +
    "00002000 ffffffff 39dadd6c 45f3de09 0100007f 00000000 00000000 00000000" +
    "00010003 00010501 000000bf 00960096 00050005 6c627570 3a687369 6576696c" +
    "6362612f 67666564",
);

/**
 * The libsrt listener's conclusion response to it (listener `rcvlatency=200`,
 * `peerlatency=300`): HSRSP with receiver latency 200 and sender latency 300.
 */
export const LIBSRT_CONCLUSION_RESPONSE = hex(
  "80000000 00000000 00000b90 39dadd6c 00000005 00000001 7b085408 000005dc" +
    "00002000 ffffffff 2d33705a 45f3de09 0100007f 00000000 00000000 00000000" +
    "00020003 00010501 000000bf 00c8012c",
);

/**
 * srt-live-transmit's conclusion for `streamid=#!::r=live/cam,m=publish,u=alice` and
 * `latency=250`: the 30-character Stream ID padded to 8 words.
 */
export const SLT_CONCLUSION = hex(
  "80000000 00000000 0000420a 00000000 00000005 00000005 3f0ab770 000005dc" +
    "00002000 ffffffff 01a38e41 03fa4b74 0100007f 00000000 00000000 00000000" +
    "00010003 00010501 000000bf 00fa00fa 00050008 3a3a2123 696c3d72 632f6576" +
    "6d2c6d61 6275703d 6873696c 613d752c 6563696c",
);

/** A full ACK from the libsrt listener (ACK 1, before any RTT sample). */
export const LIBSRT_ACK = hex(
  "80020000 00000001 00049eea 36fd5137 4ce9ff53 000186a0 0000c350 00001fef" +
    "0000190b 000003e8 006bfcdf",
);

/** ffmpeg's ACKACK for ACK 1: one zero word of padding. */
export const FFMPEG_ACKACK = hex("80060000 00000001 000808c5 33595102 00000000");

/** ffmpeg's shutdown. */
export const FFMPEG_SHUTDOWN = hex("80050000 00000000 0032dc0a 33595102 00000000");

/** A keep-alive from the libsrt listener. */
export const LIBSRT_KEEPALIVE = hex("80010000 00000000 000fa38a 30f7ad27 00000000");

/** A NAK for one lost packet from the libsrt listener. */
export const LIBSRT_NAK = hex("80030000 00000000 0003d631 0a5fb902 3a0bdd36");

/** The header of ffmpeg's first data packet: seq = ISN, solo, in order, message 1. */
export const FFMPEG_DATA_HEADER = hex("4ce9ff43 e0000001 000799a3 33595102");

/** The header of a retransmission from ffmpeg (R flag set), message 5. */
export const FFMPEG_REXMIT_HEADER = hex("3a0bdd36 e4000005 00041ca7 2d605420");
