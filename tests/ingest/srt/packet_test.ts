import assert from "node:assert/strict";
import {
  ackAckPacket,
  ackPacket,
  ControlType,
  controlType,
  destinationSocket,
  dropRequestPacket,
  isControl,
  keepAlivePacket,
  nakPacket,
  PacketPosition,
  packetTimestamp,
  parseAck,
  parseDataHeader,
  parseDropRequest,
  parseNak,
  seqAdd,
  seqOffset,
  shutdownPacket,
  SrtError,
  writeDataHeader,
} from "../../../ingest/srt/mod.ts";
import { flipBit, prng, randomBytes } from "../../_util/fuzz.ts";
import { hex, unhex } from "../../_util/bytes.ts";
import {
  FFMPEG_ACKACK,
  FFMPEG_DATA_HEADER,
  FFMPEG_REXMIT_HEADER,
  FFMPEG_SHUTDOWN,
  LIBSRT_ACK,
  LIBSRT_KEEPALIVE,
  LIBSRT_NAK,
} from "./_golden.ts";

Deno.test("data header: parses libsrt's first packet and writes the same bytes", () => {
  const h = parseDataHeader(FFMPEG_DATA_HEADER);
  assert.deepEqual(h, {
    seq: 0x4ce9ff43,
    position: PacketPosition.SOLO,
    inOrder: true,
    key: 0,
    retransmitted: false,
    msgNo: 1,
    timestamp: 0x000799a3,
    socketId: 0x33595102,
  });
  const out = new Uint8Array(16);
  writeDataHeader(out, h);
  assert.equal(hex(out), hex(FFMPEG_DATA_HEADER));
});

Deno.test("data header: the retransmission flag is separate from the message number", () => {
  const h = parseDataHeader(FFMPEG_REXMIT_HEADER);
  assert.equal(h.retransmitted, true);
  assert.equal(h.msgNo, 5);
  assert.equal(h.seq, 0x3a0bdd36);
  const out = new Uint8Array(16);
  writeDataHeader(out, h);
  assert.equal(hex(out), hex(FFMPEG_REXMIT_HEADER));
  assert.throws(() => parseDataHeader(FFMPEG_ACKACK), SrtError);
  assert.throws(() => parseDataHeader(new Uint8Array(15)), SrtError);
});

Deno.test("header accessors", () => {
  assert.equal(isControl(LIBSRT_ACK), true);
  assert.equal(isControl(FFMPEG_DATA_HEADER), false);
  assert.equal(controlType(LIBSRT_ACK), ControlType.ACK);
  assert.equal(controlType(LIBSRT_NAK), ControlType.NAK);
  assert.equal(destinationSocket(LIBSRT_ACK), 0x36fd5137);
  assert.equal(packetTimestamp(LIBSRT_ACK), 0x00049eea);
});

Deno.test("full ACK: golden bytes both ways", () => {
  const ack = parseAck(LIBSRT_ACK);
  assert.deepEqual(ack, {
    ackNo: 1,
    ackSeq: 0x4ce9ff53,
    rttUs: 100_000,
    rttVarUs: 50_000,
    availableBuffer: 8175,
    packetRate: 6411,
    linkCapacity: 1000,
    byteRate: 0x6bfcdf,
  });
  assert.equal(hex(ackPacket(ack, 0x49eea, 0x36fd5137)), hex(LIBSRT_ACK));
});

Deno.test("light and small ACKs", () => {
  const light = ackPacket({ ackNo: 0, ackSeq: 77 }, 5, 9);
  assert.equal(light.length, 20);
  assert.deepEqual(parseAck(light), { ackNo: 0, ackSeq: 77 });
  const small = ackPacket(
    { ackNo: 3, ackSeq: 78, rttUs: 1000, rttVarUs: 500, availableBuffer: 9 },
    5,
    9,
  );
  assert.equal(small.length, 32);
  assert.deepEqual(parseAck(small), {
    ackNo: 3,
    ackSeq: 78,
    rttUs: 1000,
    rttVarUs: 500,
    availableBuffer: 9,
  });
  assert.throws(() => parseAck(LIBSRT_ACK.subarray(0, 16)), SrtError);
});

Deno.test("ACKACK, keep-alive and shutdown: golden bytes", () => {
  assert.equal(hex(ackAckPacket(1, 0x808c5, 0x33595102)), hex(FFMPEG_ACKACK));
  assert.equal(hex(shutdownPacket(0x32dc0a, 0x33595102)), hex(FFMPEG_SHUTDOWN));
  assert.equal(hex(keepAlivePacket(0xfa38a, 0x30f7ad27)), hex(LIBSRT_KEEPALIVE));
});

Deno.test("NAK: golden single loss, ranges, truncation to the space given", () => {
  assert.deepEqual(parseNak(LIBSRT_NAK), [[0x3a0bdd36, 0x3a0bdd36]]);
  assert.equal(hex(nakPacket([[0x3a0bdd36, 0x3a0bdd36]], 0x3d631, 0x0a5fb902)), hex(LIBSRT_NAK));
  const ranges: [number, number][] = [[5, 5], [0x7ffffffe, 1], [10, 20]];
  const packet = nakPacket(ranges, 1, 2);
  assert.equal(
    hex(packet.subarray(16)),
    "00000005" + "fffffffe" + "00000001" + "8000000a" + "00000014",
  );
  assert.deepEqual(parseNak(packet), ranges);
  // Only what fits in 12 bytes: the single and one range.
  assert.deepEqual(parseNak(nakPacket(ranges, 1, 2, 12)), ranges.slice(0, 2));
  assert.throws(() => parseNak(unhex("80030000 00000000 00000000 00000000 80000005")), SrtError);
  assert.throws(
    () => parseNak(unhex("80030000 00000000 00000000 00000000 8000000a 00000005")),
    /backwards/,
  );
});

Deno.test("drop request: layout and round trip", () => {
  const packet = dropRequestPacket({ msgNo: 3, first: 0x7fffffff, last: 2 }, 0x10, 0x20);
  assert.equal(
    hex(packet),
    "80070000" + "00000003" + "00000010" + "00000020" + "7fffffff" + "00000002",
  );
  assert.deepEqual(parseDropRequest(packet), { msgNo: 3, first: 0x7fffffff, last: 2 });
  assert.throws(() => parseDropRequest(packet.subarray(0, 20)), SrtError);
});

Deno.test("31-bit sequence arithmetic wraps", () => {
  assert.equal(seqAdd(0x7fffffff, 1), 0);
  assert.equal(seqAdd(0, -1), 0x7fffffff);
  assert.equal(seqAdd(5, 0x80000000), 5);
  assert.equal(seqOffset(0x7ffffffe, 1), 3);
  assert.equal(seqOffset(1, 0x7ffffffe), -3);
  assert.equal(seqOffset(100, 100), 0);
  assert.equal(seqOffset(0, 0x3fffffff), 0x3fffffff);
  assert.equal(seqOffset(0, 0x40000000), -0x40000000);
});

Deno.test("fuzz: control parsers return or throw SrtError on random and mutated input", () => {
  const rand = prng(0x5e7);
  const seeds = [
    LIBSRT_ACK,
    LIBSRT_NAK,
    FFMPEG_ACKACK,
    dropRequestPacket({ msgNo: 1, first: 1, last: 9 }, 0, 1),
  ];
  const parsers = [parseAck, parseNak, parseDropRequest, parseDataHeader];
  const inputs: Uint8Array[] = [];
  for (let i = 0; i < 500; i++) inputs.push(randomBytes(rand, Math.floor(rand() * 64)));
  for (const seed of seeds) {
    for (let bit = 0; bit < seed.length * 8; bit++) inputs.push(flipBit(seed, bit));
    for (let n = 0; n < seed.length; n++) inputs.push(seed.subarray(0, n));
  }
  for (const input of inputs) {
    for (const parse of parsers) {
      try {
        parse(input);
      } catch (error) {
        assert.ok(error instanceof SrtError, `${parse.name}(${hex(input)}): ${error}`);
      }
    }
  }
});
