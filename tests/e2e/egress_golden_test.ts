/**
 * Byte-exact egress: an RTMP player's chunk stream (everything after the handshake), an
 * HTTP-FLV body, an SRT reader's MPEG-TS (its data payloads in sequence order) and an RTSP TCP
 * player's interleaved frames (with what is random in them normalized), for one deterministic
 * synthetic publish, against golden files recorded from the play loops before they were
 * rewritten to share encoded bytes. Set `UPDATE_GOLDEN=1` to record them again (only when an
 * output change is intended).
 */

import assert from "node:assert/strict";
import { FrameFlags, type MediaFrame, Registry, type StreamHandle } from "../../mod.ts";
import { ChunkWriter, commandMessage, HANDSHAKE_SIZE, serveRtmp } from "../../ingest/rtmp/mod.ts";
import { httpFlv, serveHttp } from "../../ingest/http/mod.ts";
import { HandshakeType, serveSrt } from "../../ingest/srt/mod.ts";
import { serveRtsp } from "../../ingest/rtsp/mod.ts";
import { buildAvcConfig, describeConfig } from "../../media/codec/mod.ts";
import { concat, firstDifference } from "../_util/bytes.ts";
import { prng, randomBytes } from "../_util/fuzz.ts";
import { LogLines } from "../_util/log.ts";
import { within } from "../_util/within.ts";
import { TestCaller } from "../ingest/srt/_client.ts";
import { RtspClient } from "../ingest/rtsp/_client.ts";

const GOLDEN = new URL("./testdata/", import.meta.url);
const SPS = new Uint8Array([0x67, 0x42, 0xc0, 0x1e, 0xda, 0x05, 0x07, 0xe4]); // 320x240
const PPS = new Uint8Array([0x68, 0xce, 0x3c, 0x80]);

function frame(kind: "video" | "audio", ms: number, flags: number, data: Uint8Array): MediaFrame {
  const track = kind === "video" ? 0 : 1;
  const codec = kind === "video" ? "h264" : "aac";
  return { track, kind, codec, pts: ms * 90, dts: ms * 90, flags, data };
}

/** A NAL unit of `size` bytes, length-prefixed, with pseudo-random content. */
function nal(rand: () => number, type: number, size: number): Uint8Array {
  const out = randomBytes(rand, size + 4);
  new DataView(out.buffer).setUint32(0, size);
  out[4] = type;
  return out;
}

/**
 * The publish: configs and a GOP before the player joins, then live frames with a large
 * (multi-chunk) keyframe, a config change and times past 2^24 ms (extended timestamps).
 */
function frames(): { before: MediaFrame[]; live: MediaFrame[] } {
  const rand = prng(14);
  const videoConfig = frame(
    "video",
    0,
    FrameFlags.CONFIG,
    buildAvcConfig({ sps: [SPS], pps: [PPS] }),
  );
  const audioConfig = frame("audio", 0, FrameFlags.CONFIG, new Uint8Array([0x12, 0x10]));
  const gop = (start: number, key: number) => {
    const out: MediaFrame[] = [];
    for (let i = 0; i < 6; i++) {
      const ms = start + i * 33;
      const video = i === 0
        ? frame("video", ms, FrameFlags.KEYFRAME, nal(rand, 0x65, key))
        : frame("video", ms, 0, nal(rand, 0x41, 300 + i * 40));
      out.push(video, frame("audio", ms + 5, 0, randomBytes(rand, 200 + i)));
    }
    return out;
  };
  return {
    before: [videoConfig, audioConfig, ...gop(1000, 900)],
    live: [
      ...gop(1200, 20_000),
      frame("video", 1400, FrameFlags.CONFIG, buildAvcConfig({ sps: [SPS], pps: [PPS] })),
      ...gop(0x100_0000 + 10, 5000),
    ],
  };
}

function registry(): Registry {
  // A fixed clock: the measured rates in onMetaData are then the same every run.
  return new Registry({ describeConfig, clock: () => 1000 });
}

async function untilSubscribed(handle: StreamHandle, n: number): Promise<void> {
  const until = Date.now() + 5000;
  while (handle.subscriberCount < n) {
    if (Date.now() > until) throw new Error("the player did not subscribe");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function compareGolden(name: string, bytes: Uint8Array): Promise<void> {
  const path = new URL(name, GOLDEN);
  if (Deno.env.get("UPDATE_GOLDEN") === "1") {
    await Deno.mkdir(GOLDEN, { recursive: true });
    await Deno.writeFile(path, bytes);
  }
  const golden = await Deno.readFile(path);
  const at = firstDifference(bytes, golden);
  assert.equal(at, -1, `${name}: differs at byte ${at} (${bytes.length} vs ${golden.length})`);
}

async function write(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let o = 0; o < bytes.length;) o += await conn.write(bytes.subarray(o));
}

async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  for (let o = 0; o < n;) {
    const got = await conn.read(out.subarray(o));
    if (got === null) throw new Error("closed during the handshake");
    o += got;
  }
  return out;
}

/** Read a connection to its end. */
async function drain(conn: Deno.Conn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(65536);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) return concat(chunks);
    chunks.push(buf.slice(0, n));
  }
}

Deno.test("egress golden: an RTMP player's chunk stream is byte-identical to the recorded one", async () => {
  const reg = registry();
  const log = new LogLines();
  const server = serveRtmp({ hostname: "127.0.0.1", port: 0, logger: log, registry: reg });
  const { before, live } = frames();
  const handle = reg.startPublish("live", "golden", { protocol: "test" });
  try {
    for (const f of before) handle.publish(f);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    const c0c1 = new Uint8Array(1 + HANDSHAKE_SIZE);
    c0c1[0] = 3;
    await write(conn, c0c1);
    const s0s1s2 = await readExactly(conn, 1 + 2 * HANDSHAKE_SIZE);
    const writer = new ChunkWriter();
    await write(
      conn,
      concat([
        s0s1s2.subarray(1, 1 + HANDSHAKE_SIZE),
        writer.encode(commandMessage(3, 0, "connect", 1, { app: "live", tcUrl: "rtmp://h/live" })),
        writer.encode(commandMessage(3, 0, "createStream", 2, null)),
        writer.encode(commandMessage(3, 1, "play", 3, null, "golden")),
      ]),
    );
    const rest = drain(conn);
    await untilSubscribed(handle, 1);
    for (const f of live) handle.publish(f);
    reg.endPublish(handle, "ended");
    await compareGolden("rtmp_play.bin", await within(rest, 5000, "the end of the play"));
  } finally {
    await server.close();
  }
});

Deno.test("egress golden: an HTTP-FLV body is byte-identical to the recorded one", async () => {
  const reg = registry();
  const server = serveHttp({ routes: [httpFlv(reg)], hostname: "127.0.0.1", port: 0 });
  const { before, live } = frames();
  const handle = reg.startPublish("live", "golden", { protocol: "test" });
  try {
    for (const f of before) handle.publish(f);
    const response = await fetch(`http://127.0.0.1:${server.addr.port}/live/golden.flv`);
    assert.equal(response.status, 200);
    const body = new Response(response.body).arrayBuffer();
    await untilSubscribed(handle, 1);
    for (const f of live) handle.publish(f);
    reg.endPublish(handle, "ended");
    await compareGolden("http_flv.bin", new Uint8Array(await within(body, 5000, "the FLV body")));
  } finally {
    await server.close();
  }
});

Deno.test("egress golden: an SRT reader's MPEG-TS is byte-identical to the recorded one", async () => {
  const reg = registry();
  const server = await serveSrt({
    hostname: "127.0.0.1",
    port: 0,
    logger: new LogLines(),
    registry: reg,
  });
  const caller = await TestCaller.open(server.addr.port);
  const { before, live } = frames();
  const handle = reg.startPublish("live", "golden", { protocol: "test" });
  try {
    for (const f of before) handle.publish(f);
    const accepted = await caller.connect("#!::r=live/golden,m=request");
    assert.equal(accepted.type, HandshakeType.CONCLUSION);
    const read = caller.readTs(accepted.socketId);
    await untilSubscribed(handle, 1);
    for (const f of live) handle.publish(f);
    reg.endPublish(handle, "ended");
    await compareGolden("srt_read_ts.bin", (await within(read, 10_000, "the SRT reader's end")).ts);
  } finally {
    await server.close();
    await caller.close();
  }
});

/**
 * An RTSP player's interleaved frames with what is random made relative: per track, RTP
 * sequence numbers and timestamps count from the first RTP packet's, SSRCs and RTCP NTP times
 * are zeroed. Each frame is written as its channel, its 16-bit length and its bytes, after a
 * line with the `RTP-Info` sequence numbers and times, made relative the same way.
 */
function normalizeRtsp(
  frames: readonly { channel: number; data: Uint8Array }[],
  rtpInfo: string,
): Uint8Array {
  const first = new Map<number, { sequence: number; timestamp: number }>();
  for (const { channel, data } of frames) {
    const track = channel >> 1;
    if (channel % 2 === 0 && !first.has(track)) {
      const view = new DataView(data.buffer, data.byteOffset, data.length);
      first.set(track, { sequence: view.getUint16(2), timestamp: view.getUint32(4) });
    }
  }
  const info = rtpInfo.split(",").map((entry, track) => {
    const start = first.get(track)!;
    const seq = Number(/;seq=(\d+)/.exec(entry)?.[1]);
    const time = /;rtptime=(\d+)/.exec(entry)?.[1];
    const relative = time === undefined ? "" : `;rtptime=${(Number(time) - start.timestamp) | 0}`;
    return `seq=${(seq - start.sequence) & 0xffff}${relative}`;
  }).join(",");
  const out: Uint8Array[] = [new TextEncoder().encode(info + "\n")];
  for (const { channel, data } of frames) {
    const bytes = data.slice();
    const view = new DataView(bytes.buffer);
    const start = first.get(channel >> 1)!;
    if (channel % 2 === 0) {
      view.setUint16(2, (view.getUint16(2) - start.sequence) & 0xffff);
      view.setUint32(4, (view.getUint32(4) - start.timestamp) >>> 0);
      view.setUint32(8, 0);
    } else {
      for (let at = 0; at + 8 <= bytes.length; at += (view.getUint16(at + 2) + 1) * 4) {
        view.setUint32(at + 4, 0);
        if (bytes[at + 1] === 200) {
          view.setBigUint64(at + 8, 0n);
          view.setUint32(at + 16, (view.getUint32(at + 16) - start.timestamp) >>> 0);
        }
      }
    }
    out.push(new Uint8Array([channel, bytes.length >> 8, bytes.length & 0xff]), bytes);
  }
  return concat(out);
}

Deno.test("egress golden: an RTSP TCP player's interleaved frames are byte-identical to the recorded ones", async () => {
  const reg = registry();
  const server = serveRtsp({
    registry: reg,
    hostname: "127.0.0.1",
    port: 0,
    udp: false,
    logger: new LogLines(),
    catchUpSpeed: 0,
  });
  const { before, live } = frames();
  const handle = reg.startPublish("live", "golden", { protocol: "test" });
  const url = `rtsp://127.0.0.1:${server.addr.port}/live/golden`;
  const c = await RtspClient.open(server.addr.port);
  try {
    for (const f of before) handle.publish(f);
    assert.equal((await c.request("DESCRIBE", url)).status, 200);
    const setup = await c.request("SETUP", `${url}/trackID=0`, {
      Transport: "RTP/AVP/TCP;unicast;interleaved=0-1",
    });
    const session = setup.headers.get("session")!.split(";")[0];
    await c.request("SETUP", `${url}/trackID=1`, {
      Transport: "RTP/AVP/TCP;unicast;interleaved=2-3",
      Session: session,
    });
    const play = await c.request("PLAY", url, { Session: session });
    assert.equal(play.status, 200);
    await untilSubscribed(handle, 1);
    for (const f of live) handle.publish(f);
    reg.endPublish(handle, "ended");
    // The play ends with an RTCP BYE on each track.
    const byes = (f: RtspClient["frames"]) => f.filter((x) => x.data[9] === 203).length;
    await c.waitFrames((f) => byes(f) === 2);
    await compareGolden("rtsp_play.bin", normalizeRtsp(c.frames, play.headers.get("rtp-info")!));
  } finally {
    c.close();
    await server.close();
  }
});
