import assert from "node:assert/strict";
import {
  ntpSecondsFromUnixMs,
  parseRtcp,
  RECEIVER_REPORT_SIZE,
  RtcpType,
  writeReceiverReport,
  writeSenderReport,
} from "../../../media/rtp/mod.ts";
import { fuzzParser } from "../../_util/fuzz.ts";
import { hex, unhex } from "./_util.ts";

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

// RFC 3550 6.4.2: a receiver report with one report block (6.4.1's block layout).
Deno.test("rtcp: receiver report golden bytes", () => {
  const out = new Uint8Array(RECEIVER_REPORT_SIZE + 2);
  writeReceiverReport(out, 2, 0x01020304, {
    ssrc: 0x11223344,
    fractionLost: 64,
    cumulativeLost: -1,
    highestSequence: 0x0001_0005,
    jitter: 300,
    lastSenderReport: 0xaabbccdd,
    delaySinceLastSenderReport: 0x00010000,
  });
  assert.equal(
    hex(out.subarray(2)),
    "81c90007" + "01020304" + "11223344" + "40ffffff" + "00010005" + "0000012c" + "aabbccdd" +
      "00010000",
  );
  const [rr] = parseRtcp(out.subarray(2));
  assert.equal(rr.type, RtcpType.RR);
  assert.equal(rr.count, 1);
  assert.equal(rr.bytes.length, RECEIVER_REPORT_SIZE);
  // The cumulative loss is a 24-bit signed field: clamped, not wrapped.
  writeReceiverReport(out, 0, 1, {
    ssrc: 2,
    fractionLost: 0,
    cumulativeLost: 1 << 30,
    highestSequence: 0,
    jitter: 0,
    lastSenderReport: 0,
    delaySinceLastSenderReport: 0,
  });
  assert.equal(hex(out.subarray(12, 16)), "007fffff");
});
