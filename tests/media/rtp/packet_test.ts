import assert from "node:assert/strict";
import { RtpPacket, writeRtpHeader } from "../../../media/rtp/mod.ts";
import { fuzzParser } from "../../_util/fuzz.ts";
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
