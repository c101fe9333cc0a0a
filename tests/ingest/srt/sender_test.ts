import assert from "node:assert/strict";
import {
  ackPacket,
  ControlType,
  controlType,
  isControl,
  parseAck,
  parseDataHeader,
  parseDropRequest,
  parseNak,
} from "../../../ingest/srt/mod.ts";
import { SrtReceiver } from "../../../ingest/srt/_receiver.ts";
import { type SenderOptions, SrtSender } from "../../../ingest/srt/_sender.ts";
import { prng, randomBytes } from "../../_util/fuzz.ts";
import { RecordingLink } from "./_engine.ts";

function harness(options: Partial<SenderOptions> = {}) {
  const link = new RecordingLink();
  const sender = new SrtSender(link, { isn: 500, latencyMs: 120, payloadSize: 1316, ...options });
  return { sender, link };
}

function bytes(n: number, seed = 1): Uint8Array {
  return randomBytes(prng(seed), n);
}

Deno.test("writes are cut into 1316-byte payloads; flush sends the rest", () => {
  const { sender, link } = harness();
  const input = bytes(3000);
  sender.write(input, 0);
  assert.equal(link.sent.length, 2);
  assert.equal(sender.pending, 3000 - 2 * 1316);
  sender.flush(5);
  const packets = link.drain();
  assert.deepEqual(packets.map((p) => p.length), [16 + 1316, 16 + 1316, 16 + 368]);
  const headers = packets.map(parseDataHeader);
  assert.deepEqual(headers.map((h) => h.seq), [500, 501, 502]);
  assert.deepEqual(headers.map((h) => h.msgNo), [1, 2, 3]);
  assert.deepEqual(headers.map((h) => h.timestamp), [0, 0, 5000]);
  assert.ok(headers.every((h) => h.position === 3 && h.inOrder && !h.retransmitted && h.key === 0));
  assert.ok(headers.every((h) => h.socketId === link.peerSocketId));
  assert.equal(packets[0][4], 0xe0, "the same first byte of word 1 as libsrt's live packets");
  const joined = new Uint8Array(3000);
  let at = 0;
  for (const p of packets) {
    joined.set(p.subarray(16), at);
    at += p.length - 16;
  }
  assert.deepEqual(joined, input);
  assert.equal(sender.stats.sent, 3);
  assert.equal(sender.stats.bytes, 3000);
});

Deno.test("a partial payload goes out at the end of the turn it was written in, once", async () => {
  const { sender, link } = harness();
  sender.write(bytes(188), 100);
  sender.write(bytes(1316), 101);
  assert.deepEqual(link.drain().map((p) => p.length), [16 + 1316], "the full payload at once");
  await Promise.resolve();
  const tail = link.drain();
  assert.deepEqual(tail.map((p) => p.length), [16 + 188], "the rest after the turn");
  assert.equal(parseDataHeader(tail[0]).timestamp, 101_000, "stamped at its last write");
  await Promise.resolve();
  sender.tick(200);
  assert.equal(link.sent.length, 0, "nothing more");
});

Deno.test("NAKed packets are retransmitted with the R flag; ACKs release them", () => {
  const { sender, link } = harness();
  for (let i = 0; i < 5; i++) sender.write(bytes(1316, i), i);
  const originals = link.drain();
  sender.onNak([[501, 502], [504, 504]], 10);
  const again = link.drain();
  assert.equal(again.length, 3);
  for (const [k, seq] of [501, 502, 504].entries()) {
    const h = parseDataHeader(again[k]);
    assert.equal(h.seq, seq);
    assert.equal(h.retransmitted, true);
    assert.equal(again[k][4], 0xe4);
    assert.deepEqual(
      again[k].subarray(8),
      originals[seq - 500].subarray(8),
      "same timestamp and payload",
    );
  }
  assert.equal(sender.stats.retransmitted, 3);
  sender.onAck({ ackNo: 1, ackSeq: 503, rttUs: 2000, rttVarUs: 1000 }, 11);
  assert.equal(sender.unacknowledged, 2);
  assert.equal(sender.rtt.rttUs, 2000);
  sender.onNak([[501, 501]], 12);
  assert.equal(link.drain().length, 0, "acknowledged packets are gone and not asked about");
  sender.onAck({ ackNo: 2, ackSeq: 600 }, 13);
  assert.equal(sender.unacknowledged, 2, "an ACK beyond what was sent is ignored");
});

Deno.test("packets past the latency window are dropped; NAKs for them get a drop request", () => {
  const { sender, link } = harness({ latencyMs: 120 });
  for (let i = 0; i < 4; i++) sender.write(bytes(1316, i), 0);
  sender.write(bytes(1316, 9), 900);
  link.drain();
  sender.tick(1000);
  assert.equal(sender.unacknowledged, 5, "kept for max(latency, 1 s) + 20 ms");
  sender.tick(1021);
  assert.equal(sender.unacknowledged, 1);
  assert.equal(sender.stats.dropped, 4);
  sender.onNak([[501, 504]], 1022);
  const [drop, rexmit] = link.drain();
  assert.equal(controlType(drop), ControlType.DROPREQ);
  assert.deepEqual(parseDropRequest(drop), { msgNo: 0, first: 501, last: 503 });
  assert.equal(parseDataHeader(rexmit).seq, 504);
});

Deno.test("an unacknowledged tail is retransmitted once the link goes quiet", () => {
  const { sender, link } = harness();
  sender.write(bytes(1316), 0);
  sender.write(bytes(1316, 2), 1);
  link.drain();
  sender.onAck({ ackNo: 1, ackSeq: 501, rttUs: 1000, rttVarUs: 500 }, 2);
  sender.tick(50);
  assert.equal(link.sent.length, 0);
  sender.tick(70);
  const tail = link.drain();
  assert.deepEqual(tail.map((p) => [parseDataHeader(p).seq, parseDataHeader(p).retransmitted]), [[
    501,
    true,
  ]]);
  sender.tick(120);
  assert.equal(link.sent.length, 0, "not again within the quiet interval");
  sender.tick(140);
  assert.equal(link.drain().length, 1, "and again after it");
});

Deno.test("the buffer grows while packets are unacknowledged and stops at its maximum", () => {
  const { sender, link } = harness({ maxPackets: 1024 });
  for (let i = 0; i < 2000; i++) sender.write(bytes(1316, i), 0);
  assert.equal(link.drain().length, 2000);
  assert.ok(sender.unacknowledged < 1024);
  assert.equal(sender.stats.dropped, 2000 - sender.unacknowledged);
  sender.onNak([[500 + 1999, 500 + 1999]], 1);
  const [again] = link.drain();
  assert.deepEqual(again.subarray(16), bytes(1316, 1999));
});

Deno.test("sender and receiver over a link losing 10% each way: every byte, in order", () => {
  const rand = prng(0x10ad);
  const isn = 0x7fffff00; // wraps after 255 packets
  const clockOffset = 0xffffffff - 2_000_000; // and the sender's timestamps wrap after 2 s
  const toReceiver: Uint8Array[] = [];
  const toSender: Uint8Array[] = [];
  const senderLink = new RecordingLink(clockOffset);
  const receiverLink = new RecordingLink();
  const sender = new SrtSender(senderLink, { isn, latencyMs: 300, payloadSize: 1316 });
  const chunks: Uint8Array[] = [];
  const receiver = new SrtReceiver(receiverLink, {
    isn,
    latencyMs: 300,
    handshakeAtMs: 0,
    handshakeTimestamp: clockOffset >>> 0,
    deliver: (payload) => chunks.push(payload.slice()),
  });
  const input = bytes(1316 * 1200 + 500, 77);
  let written = 0;
  for (let now = 0; now < 6000; now++) {
    // About 4 Mbit/s: one payload every 2.6 ms for 3 s.
    if (written < input.length && now % 3 === 0) {
      const n = Math.min(1316 + 658, input.length - written);
      sender.write(input.subarray(written, written + n), now);
      written += n;
      if (written === input.length) sender.flush(now);
    }
    sender.tick(now);
    if (now % 10 === 0) receiver.tick(now);
    toReceiver.push(...senderLink.drain().filter(() => rand() >= 0.1));
    for (const p of toReceiver.splice(0)) {
      if (isControl(p)) continue;
      receiver.onData(p, now);
    }
    toSender.push(...receiverLink.drain().filter(() => rand() >= 0.1));
    for (const p of toSender.splice(0)) {
      const type = controlType(p);
      if (type === ControlType.ACK) {
        const ack = parseAck(p);
        sender.onAck(ack, now);
        receiver.onAckAck(ack.ackNo, now);
      } else if (type === ControlType.NAK) {
        sender.onNak(parseNak(p), now);
      }
    }
  }
  const output = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    output.set(c, at);
    at += c.length;
  }
  assert.ok(receiver.stats.lost > 50, `lost ${receiver.stats.lost}`);
  assert.ok(sender.stats.retransmitted >= receiver.stats.lost);
  assert.equal(receiver.stats.dropped, 0);
  assert.equal(output.length, input.length);
  assert.ok(output.every((b, i) => b === input[i]), "bytes differ");
  assert.equal(sender.unacknowledged, 0);
  // Fabricated ACK numbers are harmless.
  sender.onAck(parseAck(ackPacket({ ackNo: 5, ackSeq: isn }, 0, 0)), 6000);
  assert.equal(sender.unacknowledged, 0);
});

Deno.test("a hostile NAK: 180 overlapping whole-window ranges cost one window at most, repeats cost nothing", () => {
  const { sender, link } = harness({ maxPackets: 8192 });
  for (let i = 0; i < 2000; i++) sender.write(bytes(1316, i), 0);
  link.drain();
  const everything: [number, number][] = Array.from({ length: 180 }, () => [500, 2499]);
  sender.onNak(everything, 1);
  const first = link.drain().map((p) => parseDataHeader(p).seq);
  assert.ok(first.length > 0, "a real loss report is answered");
  assert.ok(first.length <= 2000, `${first.length} retransmissions for a window of 2000`);
  assert.equal(new Set(first).size, first.length, "no packet twice for one NAK");
  // The same report at once, and 180 more within the round trip: nothing new is sent.
  for (let i = 0; i < 180; i++) sender.onNak(everything, 2);
  assert.equal(link.drain().length, 0);
  // Over the next second, at most the budget: the floor rate (no stream rate is known yet).
  let later = 0;
  for (let t = 10; t <= 1000; t += 10) {
    sender.onNak(everything, t);
    later += link.drain().length;
  }
  assert.ok(later <= 500 + 256, `${later} retransmissions in a second`);
  assert.ok(sender.stats.retransmitsDeclined > 100_000, "the rest was declined");
});

Deno.test("a NAK repeated after the round trip is answered again; overlapping ranges once", () => {
  const { sender, link } = harness();
  for (let i = 0; i < 10; i++) sender.write(bytes(1316, i), 0);
  link.drain();
  sender.onAck({ ackNo: 1, ackSeq: 500, rttUs: 20_000, rttVarUs: 1000 }, 0);
  sender.onNak([[502, 505], [503, 504], [505, 506]], 1);
  assert.deepEqual(link.drain().map((p) => parseDataHeader(p).seq), [502, 503, 504, 505, 506]);
  sender.onNak([[503, 503]], 15);
  assert.equal(link.drain().length, 0, "within the 20 ms round trip: already on its way");
  sender.onNak([[503, 503]], 22);
  assert.deepEqual(link.drain().map((p) => parseDataHeader(p).seq), [503]);
});

Deno.test("a lost retransmission is sent again without another NAK, until acknowledged", () => {
  const { sender, link } = harness({ latencyMs: 300 });
  for (let i = 0; i < 5; i++) sender.write(bytes(1316, i), 0);
  link.drain();
  sender.onAck({ ackNo: 1, ackSeq: 502, rttUs: 1000, rttVarUs: 500 }, 2);
  sender.onNak([[502, 502]], 2);
  assert.deepEqual(link.drain().map((p) => parseDataHeader(p).seq), [502]);
  // The retransmission is lost and the receiver does not report it again (libsrt's first
  // periodic NAK comes ~300 ms later): after a round trip and an ACK interval, it goes again.
  sender.tick(10);
  assert.equal(link.drain().length, 0, "too soon");
  sender.tick(30);
  assert.deepEqual(link.drain().map((p) => parseDataHeader(p).seq), [502]);
  sender.onAck({ ackNo: 2, ackSeq: 505, rttUs: 1000, rttVarUs: 500 }, 31);
  sender.tick(60);
  assert.equal(link.drain().length, 0, "acknowledged: no more");
});

Deno.test("when ACKs come late (a busy event loop), what was reported lost is not sent again before an ACK could have covered it", () => {
  const { sender, link } = harness();
  for (let i = 0; i < 10; i++) sender.write(bytes(1316, i), 0);
  link.drain();
  // The receiver measures a 1 ms round trip, but its ACKs are handled 60 ms after the
  // packets they cover were handed to the link.
  for (let k = 1; k <= 9; k++) {
    sender.onAck({ ackNo: k, ackSeq: 500 + k, rttUs: 1000, rttVarUs: 500 }, 60);
  }
  sender.onNak([[509, 509]], 60);
  assert.deepEqual(link.drain().map((p) => parseDataHeader(p).seq), [509]);
  sender.tick(90);
  assert.equal(link.drain().length, 0, "its ACK could not have come yet");
  sender.tick(150);
  assert.deepEqual(link.drain().map((p) => parseDataHeader(p).seq), [509], "now it is late");
});

Deno.test("while the send queue is backed up nothing is sent again; once it drains, a repeated NAK is answered", () => {
  const { sender, link } = harness();
  for (let i = 0; i < 10; i++) sender.write(bytes(1316, i), 0);
  link.drain();
  sender.onAck({ ackNo: 1, ackSeq: 502, rttUs: 1000, rttVarUs: 500 }, 1);
  link.sendQueueBackedUp = true;
  sender.onNak([[502, 505]], 2);
  sender.tick(100);
  sender.tick(200);
  assert.equal(link.drain().length, 0, "no retransmission, no tail");
  assert.equal(sender.stats.retransmitsDeclined, 4);
  link.sendQueueBackedUp = false;
  sender.onNak([[502, 505]], 201);
  assert.deepEqual(link.drain().map((p) => parseDataHeader(p).seq), [502, 503, 504, 505]);
  assert.equal(sender.stats.retransmitted, 4);
});

Deno.test("a hole an ACK reports, never NAKed (the NAK was lost), is repaired", () => {
  const { sender, link } = harness({ latencyMs: 300 });
  for (let i = 0; i < 5; i++) sender.write(bytes(1316, i), 0);
  link.drain();
  // The receiver got 500, 501, 503, 504; its NAK for 502 was lost. It ACKs 502 once.
  sender.onAck({ ackNo: 1, ackSeq: 502, rttUs: 100_000, rttVarUs: 50_000 }, 5);
  sender.tick(10);
  assert.equal(link.drain().length, 0, "in flight, perhaps");
  sender.tick(50);
  assert.deepEqual(link.drain().map((p) => parseDataHeader(p).seq), [502]);
});
