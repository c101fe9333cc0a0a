import assert from "node:assert/strict";
import dgram from "node:dgram";
import {
  decodeSwappedString,
  encodeHandshake,
  encodeSwappedString,
  type Handshake,
  HandshakeExtensionFlag,
  HandshakeType,
  parseHandshake,
  rejectionReason,
  rejectionType,
  RejectReason,
  SRT_MAGIC,
  SrtError,
  SrtFlag,
} from "../../../ingest/srt/mod.ts";
import { flipBit, prng, randomBytes } from "../../_util/fuzz.ts";
import { hex } from "../../_util/bytes.ts";
import { within } from "../../_util/within.ts";
import {
  FFMPEG_CONCLUSION,
  FFMPEG_INDUCTION,
  LIBSRT_CONCLUSION_RESPONSE,
  LIBSRT_INDUCTION_RESPONSE,
  SLT_CONCLUSION,
} from "./_golden.ts";
import { Procs } from "../../_util/ffmpeg.ts";
import { testsWith } from "../../_util/tools.ts";

const test = await testsWith({ srt: ["ffmpeg", "ffprobe", "srt-live-transmit"] });

const LIBSRT_FLAGS = SrtFlag.TSBPDSND | SrtFlag.TSBPDRCV | SrtFlag.HAICRYPT | SrtFlag.TLPKTDROP |
  SrtFlag.NAKREPORT | SrtFlag.REXMITFLG | SrtFlag.PACKET_FILTER;

Deno.test("induction: ffmpeg's request parses, libsrt's response encodes byte for byte", () => {
  const request = parseHandshake(FFMPEG_INDUCTION);
  assert.deepEqual(request, {
    version: 4,
    encryption: 0,
    extensionField: 2,
    isn: 0x7b085408,
    mtu: 1500,
    flowWindow: 8192,
    type: HandshakeType.INDUCTION,
    socketId: 0x39dadd6c,
    cookie: 0,
    peerIp: "127.0.0.1",
  });
  const response: Handshake = {
    ...request,
    version: 5,
    extensionField: SRT_MAGIC,
    cookie: 0x45f3de09,
  };
  assert.equal(
    hex(encodeHandshake(response, 0x40710f, 0x39dadd6c)),
    hex(LIBSRT_INDUCTION_RESPONSE),
  );
  assert.deepEqual(parseHandshake(LIBSRT_INDUCTION_RESPONSE), response);
});

Deno.test("conclusion: ffmpeg's HSREQ and Stream ID, re-encoded byte for byte", () => {
  const hs = parseHandshake(FFMPEG_CONCLUSION);
  assert.equal(hs.version, 5);
  assert.equal(hs.extensionField, HandshakeExtensionFlag.HSREQ | HandshakeExtensionFlag.CONFIG);
  assert.equal(hs.type, HandshakeType.CONCLUSION);
  assert.equal(hs.cookie, 0x45f3de09);
  assert.deepEqual(hs.hsreq, {
    version: 0x010501,
    flags: LIBSRT_FLAGS,
    receiverLatencyMs: 150,
    senderLatencyMs: 150,
  });
  assert.equal(hs.streamId, "publish:live/abcdefg");
  assert.equal(hs.keyMaterial, undefined);
  assert.equal(hex(encodeHandshake(hs, 0x15c1, 0)), hex(FFMPEG_CONCLUSION));
});

Deno.test("conclusion response: HSRSP carries receiver latency high, sender latency low", () => {
  const hs = parseHandshake(LIBSRT_CONCLUSION_RESPONSE);
  assert.deepEqual(hs.hsrsp, {
    version: 0x010501,
    flags: LIBSRT_FLAGS,
    receiverLatencyMs: 200,
    senderLatencyMs: 300,
  });
  assert.equal(hs.socketId, 0x2d33705a);
  assert.equal(hex(encodeHandshake(hs, 0xb90, 0x39dadd6c)), hex(LIBSRT_CONCLUSION_RESPONSE));
});

Deno.test("conclusion: srt-live-transmit's access-control Stream ID, padded", () => {
  const hs = parseHandshake(SLT_CONCLUSION);
  assert.equal(hs.streamId, "#!::r=live/cam,m=publish,u=alice");
  assert.equal(hs.hsreq?.receiverLatencyMs, 250);
  assert.equal(hs.hsreq?.senderLatencyMs, 250);
  assert.equal(hex(encodeHandshake(hs, 0x420a, 0)), hex(SLT_CONCLUSION));
});

Deno.test("string extensions: each 32-bit word byte-swapped, zero padded", () => {
  assert.equal(hex(encodeSwappedString("abcde")), "64636261" + "00000065");
  assert.equal(decodeSwappedString(encodeSwappedString("abcde")), "abcde");
  assert.equal(decodeSwappedString(encodeSwappedString("read:live/ünïcode")), "read:live/ünïcode");
  assert.equal(decodeSwappedString(new Uint8Array(0)), "");
  assert.throws(() => decodeSwappedString(new Uint8Array([0xff, 0xfe, 0x41, 0x41])), SrtError);
});

Deno.test("other extensions: key material, congestion, filter, group round trip", () => {
  const base = parseHandshake(FFMPEG_CONCLUSION);
  const hs: Handshake = {
    ...base,
    keyMaterial: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]),
    congestion: "file",
    filter: "fec,cols:10",
    group: new Uint8Array([0, 0, 0, 1]),
  };
  const back = parseHandshake(encodeHandshake(hs, 0, 0));
  assert.deepEqual(back, hs);
});

Deno.test("peer address: IPv4 and IPv6 in libsrt's word order", () => {
  const base = parseHandshake(FFMPEG_INDUCTION);
  for (
    const [ip, expected] of [["10.1.2.3", "10.1.2.3"], ["2001:db8::1", "2001:db8:0:0:0:0:0:1"]]
  ) {
    const packet = encodeHandshake({ ...base, peerIp: ip }, 0, 0);
    assert.equal(parseHandshake(packet).peerIp, expected);
  }
  const v6 = encodeHandshake({ ...base, peerIp: "2001:db8::1" }, 0, 0);
  assert.equal(hex(v6.subarray(48, 64)), "b80d0120" + "00000000" + "00000000" + "01000000");
});

Deno.test("rejection codes travel as 1000 + reason", () => {
  assert.equal(rejectionType(RejectReason.FORBIDDEN), 2403);
  assert.equal(rejectionType(RejectReason.UNSECURE), 1011);
  assert.equal(rejectionReason(2409), RejectReason.CONFLICT);
  assert.equal(rejectionReason(1008), RejectReason.VERSION);
  assert.equal(rejectionReason(HandshakeType.CONCLUSION), undefined);
  assert.equal(rejectionReason(HandshakeType.INDUCTION), undefined);
  assert.equal(rejectionReason(HandshakeType.DONE), undefined);
});

Deno.test("malformed handshakes throw SrtError", () => {
  assert.throws(() => parseHandshake(FFMPEG_INDUCTION.subarray(0, 63)), /at least 64/);
  const notHs = FFMPEG_INDUCTION.slice();
  notHs[1] = 2;
  assert.throws(() => parseHandshake(notHs), /not a handshake/);
  const overrun = FFMPEG_CONCLUSION.slice();
  overrun[67] = 0x40; // HSREQ claims 64 words
  assert.throws(() => parseHandshake(overrun), /runs past/);
  const long = encodeHandshake(
    { ...parseHandshake(FFMPEG_INDUCTION), streamId: "x".repeat(513) },
    0,
    0,
  );
  assert.throws(() => parseHandshake(long), /at most 512/);
});

Deno.test("fuzz: parseHandshake returns or throws SrtError", () => {
  const rand = prng(0x4a17);
  const seeds = [FFMPEG_INDUCTION, FFMPEG_CONCLUSION, LIBSRT_CONCLUSION_RESPONSE, SLT_CONCLUSION];
  let parsed = 0;
  const inputs: Uint8Array[] = [];
  for (const seed of seeds) {
    for (let bit = 0; bit < seed.length * 8; bit++) inputs.push(flipBit(seed, bit));
    for (let n = 0; n < seed.length; n += 3) inputs.push(seed.subarray(0, n));
    for (let i = 0; i < 200; i++) {
      const tail = randomBytes(rand, Math.floor(rand() * 80));
      const out = new Uint8Array(64 + tail.length);
      out.set(seed.subarray(0, 64));
      out.set(tail, 64);
      inputs.push(out);
    }
  }
  for (let i = 0; i < 500; i++) inputs.push(randomBytes(rand, Math.floor(rand() * 200)));
  for (const input of inputs) {
    try {
      parseHandshake(input);
      parsed++;
    } catch (error) {
      assert.ok(error instanceof SrtError, `${hex(input)}: ${error}`);
    }
  }
  assert.ok(parsed > 1000, `only ${parsed} inputs parsed`);
});

/**
 * Plays the listener's induction half to a real caller and returns its conclusion, so the
 * field layout is checked against what libsrt actually sends today.
 */
async function captureConclusion(command: string, args: (port: number) => string[]): Promise<{
  induction: Handshake;
  conclusion: Handshake;
}> {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const port = socket.address().port;
  const children = new Procs();
  try {
    const got = new Promise<{ induction: Handshake; conclusion: Handshake }>((resolve) => {
      let induction: Handshake | undefined;
      socket.on("message", (msg: Uint8Array, rinfo: dgram.RemoteInfo) => {
        const hs = parseHandshake(msg);
        if (hs.type === HandshakeType.INDUCTION && !induction) {
          induction = hs;
          const answer = { ...hs, version: 5, extensionField: SRT_MAGIC, cookie: 0x1234567 };
          socket.send(encodeHandshake(answer, 1000, hs.socketId), rinfo.port, rinfo.address);
        } else if (hs.type === HandshakeType.CONCLUSION && induction) {
          resolve({ induction, conclusion: hs });
        }
      });
    });
    void children.spawn(command, args(port), { limitMs: 20_000 });
    return await within(got, 20_000, `${command}'s conclusion`);
  } finally {
    children.killAll();
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}

test.srt("real callers: ffmpeg and srt-live-transmit send the layout we parse", async () => {
  const ff = await captureConclusion("ffmpeg", (port) => [
    "-hide_banner",
    "-v",
    "quiet",
    "-f",
    "lavfi",
    "-i",
    "testsrc2=size=64x64:rate=5:duration=1",
    "-f",
    "mpegts",
    `srt://127.0.0.1:${port}?streamid=publish:live/ffmpeg&latency=300000&connect_timeout=20000`,
  ]);
  assert.equal(ff.induction.version, 4);
  assert.equal(ff.induction.extensionField, 2);
  assert.equal(ff.conclusion.version, 5);
  assert.equal(ff.conclusion.cookie, 0x1234567);
  assert.equal(ff.conclusion.socketId, ff.induction.socketId);
  assert.equal(ff.conclusion.isn, ff.induction.isn);
  assert.equal(ff.conclusion.streamId, "publish:live/ffmpeg");
  assert.equal(ff.conclusion.hsreq?.receiverLatencyMs, 300);
  assert.equal(ff.conclusion.hsreq?.senderLatencyMs, 300);
  const needed = SrtFlag.TSBPDSND | SrtFlag.TSBPDRCV | SrtFlag.TLPKTDROP | SrtFlag.NAKREPORT |
    SrtFlag.REXMITFLG;
  assert.equal((ff.conclusion.hsreq?.flags ?? 0) & needed, needed);

  const slt = await captureConclusion("srt-live-transmit", (port) => [
    "-a",
    "no",
    "-t",
    "20",
    `srt://127.0.0.1:${port}?streamid=#!::r=live/slt,u=bob&rcvlatency=200&peerlatency=400`,
    "file://con",
  ]);
  assert.equal(slt.conclusion.streamId, "#!::r=live/slt,u=bob");
  // The caller's receive latency first, then what it asks its peer to receive with.
  assert.equal(slt.conclusion.hsreq?.receiverLatencyMs, 200);
  assert.equal(slt.conclusion.hsreq?.senderLatencyMs, 400);
});
