/**
 * RTSP egress on the play line: players of one stream share its RTP packets (SSRC, sequence
 * numbers, bytes), a slow reader is evicted while the others go on, TEARDOWN ends a play.
 */

import assert from "node:assert/strict";
import { setTimeout as delay } from "node:timers/promises";
import { type MediaFrame, Registry, type StreamHandle } from "../../../mod.ts";
import { type RtspServerOptions, serveRtsp } from "../../../ingest/rtsp/mod.ts";
import { RtpPacket } from "../../../media/rtp/mod.ts";
import { LogLines } from "../../_util/log.ts";
import { RtspClient } from "./_client.ts";
import { hex } from "../../media/rtp/_util.ts";
import { syntheticStream, videoFrame } from "./_util.ts";

function serve(registry: Registry, extra: Partial<RtspServerOptions> = {}) {
  const log = new LogLines();
  const server = serveRtsp({
    registry,
    hostname: "127.0.0.1",
    port: 0,
    udp: false,
    logger: log,
    catchUpSpeed: 0,
    ...extra,
  });
  return { server, log, url: `rtsp://127.0.0.1:${server.addr.port}/live/s` };
}

/** A video frame of one NAL unit of `size` bytes (an IDR slice when `key`), 40 ms apart. */
function frame(i: number, size: number, key = false): MediaFrame {
  return videoFrame(i * 3600, size, key, i & 0xff);
}

/** Publishes `live/s` with a config and a 100-byte keyframe. */
const publishStream = (registry: Registry): StreamHandle => syntheticStream(registry, "s");

/** DESCRIBE, SETUP the video track on channels 0-1, PLAY: the session, SSRC and RTP-Info. */
async function play(c: RtspClient, url: string) {
  assert.equal((await c.request("DESCRIBE", url)).status, 200);
  const setup = await c.request("SETUP", `${url}/trackID=0`, {
    Transport: "RTP/AVP/TCP;unicast;interleaved=0-1",
  });
  assert.equal(setup.status, 200);
  const session = setup.headers.get("session")!.split(";")[0];
  const ssrc = /ssrc=([0-9A-F]{8})/.exec(setup.headers.get("transport")!)![1];
  const reply = await c.request("PLAY", url, { Session: session });
  assert.equal(reply.status, 200);
  return { session, ssrc: parseInt(ssrc, 16), rtpInfo: reply.headers.get("rtp-info")! };
}

function rtpOf(c: RtspClient): Uint8Array[] {
  return c.frames.filter((f) => f.channel === 0).map((f) => f.data);
}

Deno.test("rtsp egress: two players of one stream get the same SSRC and the same packets", async () => {
  const registry = new Registry();
  const { server, url } = serve(registry);
  const handle = publishStream(registry);
  const a = await RtspClient.open(server.addr.port);
  const b = await RtspClient.open(server.addr.port);
  try {
    const first = await play(a, url);
    handle.publish(frame(1, 3000));
    handle.publish(frame(2, 200));
    const second = await play(b, url); // joins later: replays the keyframe and frames 1, 2
    for (let i = 3; i < 6; i++) handle.publish(frame(i, 2000));
    const fragments = 1 + 3 + 1 + 3 * 2; // 1400-byte payloads: 3000 and 2000 bytes in FU-As
    await a.waitFrames(() => rtpOf(a).length === fragments);
    await b.waitFrames(() => rtpOf(b).length === fragments);
    assert.equal(first.ssrc, second.ssrc);
    assert.deepEqual(rtpOf(b).map(hex), rtpOf(a).map(hex), "byte-identical RTP packets");
    const packet = new RtpPacket().parse(rtpOf(a)[0]);
    assert.equal(packet.ssrc, first.ssrc);
    for (const { rtpInfo } of [first, second]) {
      assert.match(rtpInfo, new RegExp(`;seq=${packet.sequence};rtptime=${packet.timestamp}$`));
    }
    const sequences = rtpOf(a).map((p) => new RtpPacket().parse(p).sequence);
    assert.deepEqual(sequences, sequences.map((_, i) => (packet.sequence + i) & 0xffff));
  } finally {
    a.close();
    b.close();
    registry.endPublish(handle);
    await server.close();
  }
});

Deno.test("rtsp egress: a slow reader is evicted (logged as such) while another goes on", async () => {
  const registry = new Registry({ apps: { live: { capacity: 16, gopCapacity: 16 } } });
  const { server, log, url } = serve(registry, { maxLag: 4 });
  const handle = publishStream(registry);
  const fast = await RtspClient.open(server.addr.port);
  const slow = await RtspClient.open(server.addr.port);
  try {
    await play(fast, url);
    await play(slow, url);
    slow.pause();
    // The slow reader's writes back up; the fast one reads along as the publisher goes on.
    for (let i = 1; i <= 150; i++) {
      handle.publish(frame(i, 60_000, i % 50 === 0));
      await delay(1);
    }
    slow.resume(); // its pending write drains: its next read finds it a ring behind
    await log.waitFor(/session \w+ closed: the player fell too far behind/);
    await slow.closed;
    handle.publish(frame(151, 77));
    await fast.waitFrames(() => rtpOf(fast).some((p) => p.length === 12 + 77));
    const sequences = rtpOf(fast).map((p) => new RtpPacket().parse(p).sequence);
    const gaps = sequences.filter((s, i) => i > 0 && s !== ((sequences[i - 1] + 1) & 0xffff));
    assert.deepEqual(gaps, [], "the fast reader got every packet");
    const evicted = log.lines.filter((l) => /session \w+ closed: the player fell too far/.test(l));
    assert.equal(evicted.length, 1, "only the slow reader");
    assert.equal(handle.subscriberCount, 1);
  } finally {
    fast.close();
    slow.close();
    registry.endPublish(handle);
    await server.close();
  }
});

Deno.test("rtsp egress: TEARDOWN ends the play; the connection stays", async () => {
  const registry = new Registry();
  const { server, url } = serve(registry);
  const handle = publishStream(registry);
  const c = await RtspClient.open(server.addr.port);
  try {
    const { session } = await play(c, url);
    await c.waitFrames(() => rtpOf(c).length === 1);
    assert.equal(handle.subscriberCount, 1);
    assert.equal((await c.request("TEARDOWN", url, { Session: session })).status, 200);
    assert.equal(handle.subscriberCount, 0, "the play ended at once");
    handle.publish(frame(1, 100));
    assert.equal((await c.request("OPTIONS", url)).status, 200);
    assert.equal(rtpOf(c).length, 1, "nothing after the TEARDOWN");
  } finally {
    c.close();
    registry.endPublish(handle);
    await server.close();
  }
});
