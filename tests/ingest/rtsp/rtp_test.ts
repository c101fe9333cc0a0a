import assert from "node:assert/strict";
import {
  ntpSecondsFromUnixMs,
  parseRtcp,
  RtcpType,
  RtpPacket,
  writeRtpHeader,
  writeSenderReport,
} from "../../../ingest/rtsp/mod.ts";
import { fuzzParser } from "../../media/codec/_fuzz.ts";
import { hex, unhex } from "./_util.ts";

// RFC 3550 5.1: V=2|P|X|CC, M|PT, sequence, timestamp, SSRC, CSRCs, extension, payload, padding.
Deno.test("rtp: fixed header golden bytes, both ways", () => {
  const out = new Uint8Array(12);
  writeRtpHeader(out, 0, {
    payloadType: 96,
    marker: true,
    sequence: 0xabcd,
    timestamp: 0xdeadbeef,
    ssrc: 0x01020304,
  });
  assert.equal(hex(out), "80e0abcddeadbeef01020304");
  const p = new RtpPacket().parse(unhex("80e0abcddeadbeef01020304 6588"));
  assert.deepEqual(
    [p.payloadType, p.marker, p.sequence, p.timestamp, p.ssrc, hex(p.payload)],
    [96, true, 0xabcd, 0xdeadbeef, 0x01020304, "6588"],
  );
});

Deno.test("rtp: CSRCs, header extension and padding are skipped", () => {
  const p = new RtpPacket().parse(unhex(
    "b2 61 0001 00000000 00000001" + // P, X, CC=2; PT 97
      "0000000a 0000000b" + // two CSRCs
      "bede 0001 11223344" + // one-word extension
      "aabbcc" + // payload
      "000003", // 3 bytes of padding
  ));
  assert.deepEqual([p.payloadType, p.marker, hex(p.payload)], [97, false, "aabbcc"]);
});

Deno.test("rtp: malformed packets throw RangeError", () => {
  const bad = [
    "80e0abcd", // short
    "40e0abcddeadbeef01020304", // version 1
    "82e0abcddeadbeef01020304 0000000a", // CSRC count past the end
    "90e0abcddeadbeef01020304 bede", // extension header truncated
    "90e0abcddeadbeef01020304 bede 0009 00", // extension length past the end
    "a0e0abcddeadbeef01020304 aa ff", // padding longer than the packet
    "a0e0abcddeadbeef01020304 aa 00", // padding length 0
  ];
  for (const h of bad) assert.throws(() => new RtpPacket().parse(unhex(h)), RangeError, h);
  fuzzParser(
    "RtpPacket",
    (d) => new RtpPacket().parse(d),
    unhex("b2610001000000000000000100000a0bbede000111223344aabbcc000003"),
  );
});

// RFC 3550 6.4.1: the sender report.
Deno.test("rtcp: sender report golden bytes and parse", () => {
  const out = new Uint8Array(28);
  writeSenderReport(out, 0, {
    ssrc: 0x11223344,
    ntpSeconds: 3_900_000_000.25,
    rtpTimestamp: 90000,
    packetCount: 7,
    octetCount: 1000,
  });
  assert.equal(
    hex(out),
    "80c80006" + "11223344" + "e8754700" + "40000000" + "00015f90" + "00000007" + "000003e8",
  );
  const [sr] = parseRtcp(out);
  assert.equal(sr.type, RtcpType.SR);
  assert.deepEqual(sr.senderReport, {
    ssrc: 0x11223344,
    ntpSeconds: 3_900_000_000.25,
    rtpTimestamp: 90000,
    packetCount: 7,
    octetCount: 1000,
  });
  assert.equal(ntpSecondsFromUnixMs(1000), 2_208_988_801);
});

/** A sender report with small made-up counts. */
function senderReport(): Uint8Array {
  const sr = new Uint8Array(28);
  writeSenderReport(sr, 0, {
    ssrc: 1,
    ntpSeconds: 1,
    rtpTimestamp: 2,
    packetCount: 3,
    octetCount: 4,
  });
  return sr;
}

Deno.test("rtcp: compound packets (SR + SDES, RR + BYE) are split", () => {
  const sr = senderReport();
  const sdes = unhex("81ca0002 00000001 0100 0000"); // SDES, one chunk, empty CNAME
  const packets = parseRtcp(new Uint8Array([...sr, ...sdes]));
  assert.deepEqual(packets.map((p) => [p.type, p.count, p.bytes.length]), [[200, 0, 28], [
    202,
    1,
    12,
  ]]);
  assert.equal(packets[0].senderReport?.rtpTimestamp, 2);
  assert.deepEqual(parseRtcp(unhex("80c90001 00000001 81cb0001 00000001")).map((p) => p.type), [
    201,
    203,
  ]);
});

Deno.test("rtcp: malformed packets throw RangeError", () => {
  for (const h of ["80c8", "40c80006", "80c80009 00000000", "80c80001 00000000"]) {
    assert.throws(() => parseRtcp(unhex(h)), RangeError, h);
  }
  const sr = senderReport();
  fuzzParser(
    "parseRtcp",
    parseRtcp,
    new Uint8Array([...sr, ...unhex("81ca0002 00000001 0100 0000")]),
  );
});
