import assert from "node:assert/strict";
import {
  formatResponse,
  RtspError,
  RtspReader,
  RtspResponseReader,
} from "../../../ingest/rtsp/mod.ts";
import { MessageReader } from "../../../ingest/rtsp/_message_reader.ts";
import { prng, randomBytes } from "../../_util/fuzz.ts";
import { hex } from "./_util.ts";

const enc = new TextEncoder();

function reader() {
  const frames: [number, string][] = [];
  const r = new RtspReader((channel, data) => frames.push([channel, hex(data)]));
  return { r, frames };
}

const ANNOUNCE = "ANNOUNCE rtsp://127.0.0.1:8554/live/x RTSP/1.0\r\n" +
  "Content-Type: application/sdp\r\nCSeq: 2\r\nUser-Agent: Lavf59.27.100\r\n" +
  "Content-Length: 10\r\n\r\nv=0\r\ns=x\r\n";

Deno.test("rtsp message: a request with a body, then interleaved frames, split anywhere", () => {
  const bytes = new Uint8Array([
    ...enc.encode(ANNOUNCE),
    0x24,
    0,
    0,
    3,
    0x80,
    0x60,
    0x01,
    0x24,
    1,
    0,
    0,
    ...enc.encode("OPTIONS * RTSP/1.0\nCSeq: 3\n\n"),
  ]);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const { r, frames } = reader();
    const requests = [...r.push(bytes.subarray(0, cut)), ...r.push(bytes.subarray(cut))];
    assert.deepEqual(requests.map((q) => [q.method, q.uri, q.version, q.headers.get("cseq")]), [
      ["ANNOUNCE", "rtsp://127.0.0.1:8554/live/x", "RTSP/1.0", "2"],
      ["OPTIONS", "*", "RTSP/1.0", "3"],
    ]);
    assert.equal(new TextDecoder().decode(requests[0].body), "v=0\r\ns=x\r\n");
    assert.equal(requests[0].headers.get("content-type"), "application/sdp");
    assert.deepEqual(frames, [[0, "806001"], [1, ""]]);
  }
});

Deno.test("rtsp message: header continuation lines and repeated fields", () => {
  const { r } = reader();
  const [q] = r.push(enc.encode(
    "SETUP rtsp://h/live/x/trackID=0 RTSP/1.0\r\nCSeq: 4\r\nTransport: RTP/AVP/TCP;\r\n" +
      " interleaved=0-1\r\nX-A: 1\r\nX-A: 2\r\n\r\n",
  ));
  assert.equal(q.headers.get("transport"), "RTP/AVP/TCP; interleaved=0-1");
  assert.equal(q.headers.get("x-a"), "1, 2");
});

function fatal(input: string | Uint8Array, status: number, limits = {}): RtspError {
  const r = new RtspReader(() => {}, limits);
  try {
    r.push(typeof input === "string" ? enc.encode(input) : input);
  } catch (error) {
    assert.ok(error instanceof RtspError, String(error));
    assert.equal(error.status, status, error.message);
    assert.equal(error.fatal, true);
    return error;
  }
  assert.fail(`no error for ${String(input).slice(0, 60)}`);
}

Deno.test("rtsp message: bad input is a fatal 400 or 413", () => {
  fatal("GARBAGE\r\n\r\n", 400);
  fatal("get / HTTP/1.1\r\n\r\n", 400);
  fatal("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400);
  fatal("OPTIONS * RTSP/1.0\r\nNoColon\r\n\r\n", 400);
  fatal("OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: -1\r\n\r\n", 400);
  fatal("OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 1e3\r\n\r\n", 400);
  const absurd = fatal("OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 99999999999\r\n\r\n", 413);
  assert.match(absurd.message, /Content-Length 99999999999 exceeds 65536/);
  fatal("OPTIONS * RTSP/1.0\r\nBad\x01Name: 1\r\n\r\n", 400);
  // header floods: too many fields, or a head that never ends
  fatal("OPTIONS * RTSP/1.0\r\n" + "X-A: 1\r\n".repeat(65) + "\r\n", 400);
  fatal("OPTIONS * RTSP/1.0\r\nX: " + "a".repeat(9000), 400);
  fatal("OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n" + "X: y\r\n".repeat(10) + "\r\n", 400, {
    maxHeaders: 5,
  });
});

Deno.test("rtsp message: a head that arrives slowly is kept up to the limit", () => {
  const { r } = reader();
  const text = "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n" + "X-Pad: " + "a".repeat(6000) + "\r\n\r\n";
  let got = 0;
  for (const ch of enc.encode(text)) got += r.push(Uint8Array.of(ch)).length;
  assert.equal(got, 1);
});

Deno.test("rtsp message: only an incomplete message is kept, in memory that grows with it", () => {
  const frames: number[] = [];
  const r = new MessageReader((_, data) => frames.push(data.length), (line) => line, {
    maxHeadBytes: 8192,
    maxHeaders: 64,
    maxBodyBytes: 65536,
  });
  // complete messages are split where they lie: nothing is kept
  r.push(enc.encode("OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n"));
  r.push(Uint8Array.of(0x24, 1, 0, 2, 0xaa, 0xbb));
  assert.equal(r.capacity, 0);
  // a 60000-byte interleaved frame arriving 1000 bytes at a time: what is kept stays within
  // twice what came of it
  const frame = new Uint8Array(4 + 60_000);
  frame.set([0x24, 0, 60_000 >> 8, 60_000 & 0xff]);
  for (let o = 0; o < frame.length; o += 1000) {
    r.push(frame.subarray(o, o + 1000));
    if (r.buffered > 0) assert.ok(r.capacity <= Math.max(256, 2 * r.buffered), `at ${o}`);
  }
  assert.deepEqual(frames, [2, 60_000]);
  assert.equal(r.capacity, 0, "the large store is let go once the frame is complete");
  // a head kept to its limit, then refused
  r.push(enc.encode("OPTIONS * RTSP/1.0\r\nX: " + "a".repeat(8000)));
  assert.ok(r.capacity <= 2 * r.buffered);
  assert.throws(() => r.push(enc.encode("a".repeat(500))), RtspError);
});

Deno.test("rtsp message: responses", () => {
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  assert.equal(
    text(formatResponse(200, [["CSeq", "1"], ["Public", "OPTIONS"]])),
    "RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: OPTIONS\r\n\r\n",
  );
  assert.equal(
    text(formatResponse(200, [["CSeq", "2"]], "v=0\r\n")),
    "RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Length: 5\r\n\r\nv=0\r\n",
  );
  assert.equal(
    text(formatResponse(400, [["X", "a\r\nInjected: 1"]], "", "Stream\nBusy")),
    "RTSP/1.0 400 Stream Busy\r\nX: a  Injected: 1\r\n\r\n",
  );
  assert.equal(text(formatResponse(454, [])), "RTSP/1.0 454 Session Not Found\r\n\r\n");
});

/** Mutated and random input, split anywhere: only RtspError 400/413, the buffer bounded. */
function fuzzReader(
  make: () => { push(bytes: Uint8Array): unknown; readonly buffered: number },
  seed: Uint8Array,
  rngSeed: number,
): void {
  const rand = prng(rngSeed);
  for (let i = 0; i < 3000; i++) {
    const r = make();
    const data = rand() < 0.5 ? seed.slice() : randomBytes(rand, 1 + Math.floor(rand() * 200));
    for (let k = 0; k < 1 + Math.floor(rand() * 8); k++) {
      data[Math.floor(rand() * data.length)] = Math.floor(rand() * 256);
    }
    try {
      for (let at = 0; at < data.length;) {
        const n = 1 + Math.floor(rand() * 40);
        r.push(data.subarray(at, at + n));
        at += n;
        assert.ok(r.buffered <= 8192 + 65536 + 4);
      }
    } catch (error) {
      assert.ok(error instanceof RtspError, `case ${i}: ${error}`);
      assert.ok([400, 413].includes(error.status));
    }
  }
}

Deno.test("rtsp message: bounded fuzz: only RtspError, memory stays bounded", () => {
  fuzzReader(() => reader().r, enc.encode(ANNOUNCE), 2326);
});

Deno.test("rtsp message: responses are read, a request or garbage refused; bounded fuzz", () => {
  const frames: number[] = [];
  const r = new RtspResponseReader((channel) => frames.push(channel));
  const text = "RTSP/1.0 200 OK\r\nCSeq: 3\r\nContent-Type: application/sdp\r\n" +
    "Content-Length: 10\r\n\r\nv=0\r\ns=x\r\n$\x01\x00\x04abcdRTSP/1.0 454 Session Not Found\r\n\r\n";
  const seed = enc.encode(text);
  const got = r.push(seed);
  assert.deepEqual(got.map((m) => [m.status, m.reason, m.headers.get("cseq"), m.body.length]), [
    [200, "OK", "3", 10],
    [454, "Session Not Found", null, 0],
  ]);
  assert.deepEqual(frames, [1]);
  assert.throws(
    () => new RtspResponseReader(() => {}).push(enc.encode("OPTIONS * RTSP/1.0\r\n\r\n")),
    /malformed status line/,
  );
  fuzzReader(() => new RtspResponseReader(() => {}), seed, 7826);
});
