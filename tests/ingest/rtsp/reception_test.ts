import assert from "node:assert/strict";
import { ReceptionStats } from "../../../ingest/rtsp/_reception.ts";

/** An RTP header: sequence, timestamp, SSRC. */
function rtp(seq: number, ts: number, ssrc = 7): Uint8Array {
  const p = new Uint8Array(12);
  const v = new DataView(p.buffer);
  p[0] = 0x80;
  v.setUint16(2, seq & 0xffff);
  v.setUint32(4, ts >>> 0);
  v.setUint32(8, ssrc);
  return p;
}

// RFC 3550 A.3: expected = extended highest - base + 1; lost = expected - received.
Deno.test("reception: losses across a sequence wrap, the fraction per interval, LSR and DLSR", () => {
  const stats = new ReceptionStats(90000);
  assert.equal(stats.report(0), undefined, "nothing before the first packet");
  // 65530..65535, then 0..9 with 2 and 3 lost: 16 expected, 14 received.
  const at = (i: number) => i * 40; // 40 ms apart, 3600 ticks apart
  for (let i = 0; i < 16; i++) {
    if (i !== 8 && i !== 9) stats.packet(rtp(65530 + i, 3600 * i), at(i));
  }
  const t = at(16);
  stats.senderReport({
    ssrc: 7,
    ntpSeconds: 3_900_000_000.5,
    rtpTimestamp: 0,
    packetCount: 0,
    octetCount: 0,
  }, 1000);
  const first = stats.report(1500)!;
  assert.equal(first.ssrc, 7);
  assert.equal(first.highestSequence, 0x10000 + 9);
  assert.equal(first.cumulativeLost, 2);
  assert.equal(first.fractionLost, Math.floor(2 * 256 / 16));
  assert.equal(first.jitter, 0, "packets exactly on their clock: no jitter");
  assert.equal(first.lastSenderReport, ((3_900_000_000 % 65536) * 65536 + 32768) >>> 0);
  assert.equal(first.delaySinceLastSenderReport, Math.round(500 * 65.536));
  // A late duplicate does not move the highest sequence number; nothing new is lost.
  stats.packet(rtp(65535, 3600 * 5), t);
  stats.packet(rtp(10, 3600 * 16), t + 100);
  const second = stats.report(2000)!;
  assert.equal(second.highestSequence, 0x10000 + 10);
  assert.equal(second.fractionLost, 0);
  assert.ok(second.jitter > 0, "a packet 100 ms late is jitter");
  // A new SSRC starts over.
  stats.packet(rtp(100, 0, 8), t + 200);
  assert.deepEqual([stats.report(2500)!.ssrc, stats.report(2500)!.cumulativeLost], [8, 0]);
});
