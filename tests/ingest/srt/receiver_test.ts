import assert from "node:assert/strict";
import {
  ackAckPacket,
  ControlType,
  controlType,
  parseAck,
  parseNak,
  seqAdd,
} from "../../../ingest/srt/mod.ts";
import { readU32 } from "../../../ingest/srt/_wire.ts";
import { type ReceiverOptions, SrtReceiver } from "../../../ingest/srt/_receiver.ts";
import { dataPacket, RecordingLink } from "./_engine.ts";

interface Harness {
  receiver: SrtReceiver;
  link: RecordingLink;
  /** Sequence numbers delivered, in order (read from each 4-byte payload). */
  delivered: number[];
}

function harness(options: Partial<ReceiverOptions> = {}): Harness {
  const link = new RecordingLink();
  const delivered: number[] = [];
  const receiver = new SrtReceiver(link, {
    isn: 1000,
    latencyMs: 120,
    handshakeAtMs: 0,
    handshakeTimestamp: 0,
    deliver: (payload) => delivered.push(readU32(payload, 0)),
    ...options,
  });
  return { receiver, link, delivered };
}

function sentOfType(link: RecordingLink, type: number): Uint8Array[] {
  return link.drain().filter((p) => controlType(p) === type);
}

Deno.test("in-order packets are delivered at once and acknowledged on the tick", () => {
  const { receiver, link, delivered } = harness();
  for (let i = 0; i < 5; i++) receiver.onData(dataPacket(1000 + i, i * 1000), i);
  assert.deepEqual(delivered, [1000, 1001, 1002, 1003, 1004]);
  assert.equal(link.sent.length, 0);
  receiver.tick(10);
  const [ack] = sentOfType(link, ControlType.ACK);
  const info = parseAck(ack);
  assert.equal(info.ackNo, 1);
  assert.equal(info.ackSeq, 1005);
  assert.equal(info.availableBuffer, 8192);
  assert.equal(readU32(ack, 12), link.peerSocketId);
  // Nothing new and not yet acknowledged: no repeat before the RTT timeout.
  receiver.tick(20);
  assert.equal(sentOfType(link, ControlType.ACK).length, 0);
  receiver.onAckAck(1, 30);
  assert.equal(receiver.rtt.rttUs, 20_000);
  receiver.tick(1000);
  assert.equal(sentOfType(link, ControlType.ACK).length, 0);
});

Deno.test("a gap is NAKed at once, held packets wait, a retransmission releases them", () => {
  const { receiver, link, delivered } = harness();
  receiver.onData(dataPacket(1000, 0), 0);
  receiver.onData(dataPacket(1003, 3000), 3);
  const [nak] = sentOfType(link, ControlType.NAK);
  assert.deepEqual(parseNak(nak), [[1001, 1002]]);
  receiver.onData(dataPacket(1004, 4000), 4);
  assert.deepEqual(delivered, [1000]);
  assert.equal(receiver.buffered, 4);
  receiver.onData(dataPacket(1002, 2000, undefined, true), 5);
  receiver.onData(dataPacket(1001, 1000, undefined, true), 6);
  assert.deepEqual(delivered, [1000, 1001, 1002, 1003, 1004]);
  assert.equal(receiver.stats.lost, 2);
  assert.equal(receiver.stats.retransmitted, 2);
  assert.equal(receiver.stats.dropped, 0);
  receiver.onData(dataPacket(1002, 2000, undefined, true), 7);
  assert.equal(receiver.stats.duplicates, 1);
  assert.deepEqual(delivered, [1000, 1001, 1002, 1003, 1004]);
});

Deno.test("losses are reported again every NAK interval until repaired", () => {
  const { receiver, link } = harness();
  receiver.onData(dataPacket(1000, 0), 0);
  receiver.tick(0);
  receiver.onAckAck(1, 1); // RTT 1 ms: the NAK interval is its 20 ms floor
  receiver.onData(dataPacket(1002, 2000), 2);
  receiver.onData(dataPacket(1005, 5000), 5);
  assert.deepEqual(sentOfType(link, ControlType.NAK).map(parseNak), [[[1001, 1001]], [[
    1003,
    1004,
  ]]]);
  receiver.tick(15);
  assert.equal(sentOfType(link, ControlType.NAK).length, 0, "too soon");
  receiver.tick(22);
  assert.deepEqual(sentOfType(link, ControlType.NAK).map(parseNak), [[[1001, 1001]]]);
  receiver.tick(25);
  assert.deepEqual(sentOfType(link, ControlType.NAK).map(parseNak), [[[1003, 1004]]]);
  receiver.onData(dataPacket(1003, 3000, undefined, true), 30);
  receiver.tick(42);
  assert.deepEqual(sentOfType(link, ControlType.NAK).map(parseNak), [[[1001, 1001]]]);
  receiver.tick(45);
  assert.deepEqual(sentOfType(link, ControlType.NAK).map(parseNak), [[[1004, 1004]]]);
});

Deno.test("a gap the sender never repairs is skipped when the next packet is due", () => {
  const { receiver, link, delivered } = harness({
    latencyMs: 100,
    handshakeAtMs: 50,
    handshakeTimestamp: 7000,
  });
  // Peer clock: 7 ms at local 50 ms, so timestamp t µs is local (43 + t / 1000) ms.
  receiver.onData(dataPacket(1000, 10_000), 53);
  receiver.onData(dataPacket(1003, 40_000), 83);
  receiver.onData(dataPacket(1004, 41_000), 84);
  receiver.tick(182);
  assert.deepEqual(delivered, [1000], "1003 is due at 43 + 40 + 100 = 183 ms");
  receiver.tick(183);
  assert.deepEqual(delivered, [1000, 1003, 1004]);
  assert.equal(receiver.stats.dropped, 2);
  link.drain();
  receiver.tick(200);
  const acks = sentOfType(link, ControlType.ACK);
  assert.equal(parseAck(acks[acks.length - 1]).ackSeq, 1005);
  receiver.onData(dataPacket(1001, 11_000, undefined, true), 201);
  assert.deepEqual(delivered, [1000, 1003, 1004]);
});

Deno.test("a drop request stops the wait for what the sender gave up", () => {
  const { receiver, delivered } = harness();
  receiver.onData(dataPacket(1000, 0), 0);
  receiver.onData(dataPacket(1004, 4000), 4);
  receiver.onDropRequest(1001, 1002);
  assert.deepEqual(delivered, [1000]);
  receiver.onDropRequest(990, 1003);
  assert.deepEqual(delivered, [1000, 1004]);
  assert.equal(receiver.stats.dropped, 3);
  // A range beyond what arrived moves the expected sequence on.
  receiver.onDropRequest(1005, 1006);
  receiver.onData(dataPacket(1007, 7000), 7);
  assert.deepEqual(delivered, [1000, 1004, 1007]);
});

Deno.test("31-bit sequence numbers wrap, in delivery and in NAK ranges", () => {
  const isn = 0x7ffffffd;
  const { receiver, link, delivered } = harness({ isn });
  receiver.onData(dataPacket(isn, 0), 0);
  receiver.onData(dataPacket(seqAdd(isn, 4), 4000), 4);
  const [nak] = sentOfType(link, ControlType.NAK);
  assert.deepEqual(parseNak(nak), [[0x7ffffffe, 0]]);
  receiver.onData(dataPacket(0x7ffffffe, 1000, undefined, true), 5);
  receiver.onData(dataPacket(0x7fffffff, 2000, undefined, true), 6);
  receiver.onData(dataPacket(0, 3000, undefined, true), 7);
  assert.deepEqual(delivered, [0x7ffffffd, 0x7ffffffe, 0x7fffffff, 0, 1]);
  receiver.tick(20);
  assert.equal(parseAck(sentOfType(link, ControlType.ACK)[0]).ackSeq, 2);
});

Deno.test("32-bit timestamps wrap without breaking deadlines", () => {
  // The peer's clock is 4 ms before its 32-bit wrap when the handshake arrives at 0.
  const start = 0xffffffff - 3999;
  const { receiver, delivered } = harness({ latencyMs: 50, handshakeTimestamp: start });
  const at = (ms: number) => (start + ms * 1000) >>> 0;
  receiver.onData(dataPacket(1000, at(1)), 1);
  receiver.onData(dataPacket(1002, at(10)), 10); // after the wrap: small raw value
  assert.ok(at(10) < 10_000);
  receiver.tick(59);
  assert.deepEqual(delivered, [1000]);
  receiver.tick(60);
  assert.deepEqual(delivered, [1000, 1002]);
});

Deno.test("packets far out of order grow the buffer and come out in order", () => {
  const { receiver, delivered } = harness();
  const order: number[] = [];
  for (let i = 1; i < 1500; i++) order.push(1000 + i);
  order.reverse();
  order.push(1000);
  for (const seq of order) receiver.onData(dataPacket(seq, 0), 1);
  assert.equal(delivered.length, 1500);
  assert.ok(delivered.every((seq, i) => seq === 1000 + i));
});

Deno.test("a packet too far ahead gives up what cannot be held", () => {
  const { receiver, delivered } = harness({ maxPackets: 64 });
  receiver.onData(dataPacket(1000, 0), 0);
  receiver.onData(dataPacket(1002, 0), 0);
  receiver.onData(dataPacket(1200, 0), 0);
  assert.deepEqual(delivered, [1000, 1002]);
  assert.equal(receiver.buffered, 64);
  receiver.onData(dataPacket(1199, 0), 0);
  assert.equal(receiver.nextSeq, 1199 - 62);
});

Deno.test("oversized and empty data packets are refused", () => {
  const { receiver, delivered } = harness({ maxPayload: 8 });
  receiver.onData(dataPacket(1000, 0, new Uint8Array(9)), 0);
  receiver.onData(dataPacket(1000, 0, new Uint8Array(0)), 0);
  assert.equal(delivered.length, 0);
  assert.equal(receiver.nextSeq, 1000);
});

Deno.test("ACKACK answering an old ACK still samples; unknown numbers are ignored", () => {
  const { receiver, link } = harness();
  receiver.onData(dataPacket(1000, 0), 0);
  receiver.tick(10);
  receiver.onData(dataPacket(1001, 0), 11);
  receiver.tick(20);
  assert.equal(sentOfType(link, ControlType.ACK).length, 2);
  receiver.onAckAck(99, 21);
  assert.equal(receiver.rtt.rttUs, 100_000);
  receiver.onAckAck(1, 50);
  assert.equal(receiver.rtt.rttUs, 40_000);
  assert.equal(readU32(ackAckPacket(1, 0, 0), 4), 1);
});

Deno.test("before the first RTT sample, losses are reported again within a quarter of the latency", () => {
  const { receiver, link } = harness({ latencyMs: 300 });
  receiver.onData(dataPacket(1000, 0), 0);
  receiver.onData(dataPacket(1002, 2000), 2);
  assert.deepEqual(sentOfType(link, ControlType.NAK).map(parseNak), [[[1001, 1001]]]);
  // No ACKACK yet: the RTO is libsrt's default 300 ms; its half would leave one try.
  receiver.tick(60);
  assert.equal(sentOfType(link, ControlType.NAK).length, 0, "too soon");
  receiver.tick(80);
  assert.deepEqual(sentOfType(link, ControlType.NAK).map(parseNak), [[[1001, 1001]]]);
});
