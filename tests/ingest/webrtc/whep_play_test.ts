/**
 * WHEP viewers on the play line, with werift viewers: a viewer's DELETE ends its play, a slow
 * viewer is ended past the server's `maxLag` (and kept under a larger one), a stuck one past
 * `stallTimeoutMs`, a vanished one past `peerTimeoutMs`: each without costing the other
 * viewer of the stream a frame. A viewer catching up from the replay at `catchUpSpeed` gets
 * every frame once, in order. Every viewer of a stream sends the stream's packets, made once:
 * two viewers get the same sequence numbers and payloads for a frame, and a viewer that skips
 * frames to keep up sees no gap in its sequence numbers.
 */

import assert from "node:assert/strict";
import dgram from "node:dgram";
import { RTCRtpSender } from "werift";
import { FrameFlags, type MediaFrame, Registry, type StreamHandle } from "../../../mod.ts";
import { video } from "../../media/hls/_synthetic.ts";
import { liveStream, openPeer, type Peer, withServer } from "./_peers.ts";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A connected WHEP viewer of `live/cam` counting the frames (marker packets) it gets. */
interface Viewer {
  readonly peer: Peer;
  /** Video frames received so far. */
  frames(): number;
  /** The RTP timestamp of each frame received, in order. */
  readonly timestamps: number[];
  /** Every video packet received, in order. */
  readonly packets: { sequence: number; timestamp: number; payload: Uint8Array }[];
  /** The SSRC the server sends it video with. */
  ssrc(): number;
  /** Resolves once `count` frames have arrived; rejects after 10 s. */
  until(count: number): Promise<void>;
}

async function viewer(base: string): Promise<Viewer> {
  let frames = 0;
  let ssrc = -1;
  const timestamps: number[] = [];
  const packets: Viewer["packets"] = [];
  const peer = await openPeer(`${base}/live/cam/whep`, "recvonly", {
    onRtp: (rtp) => {
      ssrc = rtp.header.ssrc;
      const { sequenceNumber: sequence, timestamp } = rtp.header;
      packets.push({ sequence, timestamp, payload: Uint8Array.from(rtp.payload) });
      if (!rtp.header.marker) return;
      frames++;
      timestamps.push(rtp.header.timestamp);
    },
  });
  await peer.client.connectionStateChange.watch((state) => state === "connected", 10_000);
  return {
    peer,
    frames: () => frames,
    timestamps,
    packets,
    ssrc: () => ssrc,
    async until(count) {
      const deadline = Date.now() + 10_000;
      while (frames < count) {
        if (Date.now() > deadline) throw new Error(`${frames} of ${count} frames`);
        await sleep(10);
      }
    },
  };
}

/** Two viewers of `handle`, each past its replay (the keyframe). */
async function twoViewers(base: string, handle: StreamHandle): Promise<[Viewer, Viewer]> {
  const viewers: [Viewer, Viewer] = [await viewer(base), await viewer(base)];
  for (const v of viewers) await v.until(1);
  assert.equal(handle.subscriberCount, 2);
  return viewers;
}

/** Publish `count` frames from frame `first` on, `gapMs` apart, a keyframe every 10. */
async function publish(
  handle: StreamHandle,
  count: number,
  gapMs: number,
  first = 1,
): Promise<void> {
  for (let i = first; i < first + count; i++) {
    handle.publish(video(i * 3000, i % 10 === 0));
    await sleep(gapMs);
  }
}

/** Make the server's sends to the viewer sent with `ssrc` settle as `send` says. */
async function withSends(
  ssrc: number,
  send: () => Promise<void>,
  run: () => Promise<void>,
): Promise<void> {
  const original = RTCRtpSender.prototype.sendRtp;
  RTCRtpSender.prototype.sendRtp = function (this: RTCRtpSender, rtp) {
    return this.ssrc === ssrc ? send() : original.call(this, rtp);
  };
  try {
    await run();
  } finally {
    RTCRtpSender.prototype.sendRtp = original;
  }
}

/** Wait until `handle` has `count` subscribers (fails after 10 s). */
async function subscribers(handle: StreamHandle, count: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (handle.subscriberCount !== count) {
    if (Date.now() > deadline) throw new Error(`${handle.subscriberCount} subscribers`);
    await sleep(10);
  }
}

Deno.test("WHEP: a viewer's DELETE ends its play; the other viewer gets every frame", async () => {
  const registry = new Registry();
  const handle = liveStream(registry);
  await withServer({}, async (base, _registry, log) => {
    const [gone, stays] = await twoViewers(base, handle);
    try {
      const res = await fetch(gone.peer.session, { method: "DELETE" });
      await res.body?.cancel();
      assert.equal(res.status, 200);
      await log.waitFor(/ended: ended by the client/);
      await subscribers(handle, 1);
      const before = gone.frames();
      await publish(handle, 20, 5);
      await stays.until(21);
      assert.equal(stays.frames(), 21);
      assert.equal(gone.frames(), before, "the deleted viewer got frames after its DELETE");
    } finally {
      await gone.peer.client.close();
      await stays.peer.client.close();
    }
  }, registry);
});

for (const maxLag of [4, 1_000_000]) {
  Deno.test(`WHEP: a viewer whose sends are slow is ${maxLag === 4 ? "ended past maxLag 4" : "kept under a larger maxLag"}; the other viewer gets every frame`, async () => {
    const registry = new Registry({ apps: { live: { capacity: 16, gopCapacity: 16 } } });
    const handle = liveStream(registry);
    await withServer({ maxLag }, async (base, _registry, log) => {
      const [slow, fast] = await twoViewers(base, handle);
      try {
        // Each of the slow viewer's batches takes 300 ms: some 50 frames arrive meanwhile,
        // more than the ring's 16, so it skips ahead to keyframes.
        await withSends(slow.ssrc(), () => sleep(300), async () => {
          await publish(handle, 60, 5);
          await fast.until(61);
          if (maxLag === 4) {
            await log.waitFor(/ended: the player fell more than 4 frames behind/);
            await subscribers(handle, 1);
          } else {
            await sleep(700);
            assert.equal(handle.subscriberCount, 2);
            assert.ok(!log.lines.some((l) => /fell more than/.test(l)), log.lines.join("\n"));
          }
        });
        assert.equal(fast.frames(), 61);
      } finally {
        await slow.peer.client.close();
        await fast.peer.client.close();
      }
    }, registry);
  });
}

Deno.test("WHEP: a viewer whose send never settles is ended after stallTimeoutMs; the other viewer gets every frame", async () => {
  const registry = new Registry();
  const handle = liveStream(registry);
  await withServer({ stallTimeoutMs: 300 }, async (base, _registry, log) => {
    const [stuck, fine] = await twoViewers(base, handle);
    try {
      await withSends(stuck.ssrc(), () => new Promise(() => {}), async () => {
        await publish(handle, 40, 20);
        await log.waitFor(/ended: a send to the player stayed pending more than 300 ms/);
        await fine.until(41);
      });
      await subscribers(handle, 1);
      assert.equal(fine.frames(), 41);
    } finally {
      await stuck.peer.client.close();
      await fine.peer.client.close();
    }
  }, registry);
});

/** A video frame of one 60 kB slice: some 50 RTP packets. */
function largeVideo(dts: number, key: boolean): MediaFrame {
  const data = new Uint8Array(4 + 60_000);
  new DataView(data.buffer).setUint32(0, data.length - 4);
  data[4] = key ? 0x65 : 0x41;
  const flags = key ? FrameFlags.KEYFRAME : 0;
  return { track: 0, kind: "video", codec: "h264", pts: dts, dts, flags, data };
}

/** The server's UDP port a viewer's packets come from. */
function serverPortOf(viewer: Viewer): number {
  const connection = viewer.peer.client.iceTransports[0].connection as unknown as {
    nominated?: { remoteAddr: [string, number] };
  };
  const port = connection.nominated?.remoteAddr[1];
  if (port === undefined) throw new Error("the viewer has no nominated pair");
  return port;
}

Deno.test("WHEP: a viewer whose socket takes no packets waits in the stream's ring, not in its socket, and is ended after stallTimeoutMs; the other viewer gets every frame", async () => {
  const registry = new Registry();
  const handle = liveStream(registry);
  // Sends on these ports are neither made nor called back: a socket that never drains.
  const stuckPorts = new Set<number>();
  let held = 0;
  const send = dgram.Socket.prototype.send;
  dgram.Socket.prototype.send = function (this: dgram.Socket, ...args: unknown[]) {
    if (stuckPorts.has(this.address().port)) return void held++;
    return (send as (...args: unknown[]) => void).apply(this, args);
  };
  try {
    await withServer({ stallTimeoutMs: 300 }, async (base, _registry, log) => {
      const [stuck, fine] = await twoViewers(base, handle);
      try {
        stuckPorts.add(serverPortOf(stuck));
        for (let i = 1; i <= 20; i++) {
          handle.publish(largeVideo(i * 3000, i % 10 === 0));
          await sleep(20);
        }
        await log.waitFor(/ended: a send to the player stayed pending more than 300 ms/);
        await fine.until(21);
        await subscribers(handle, 1);
        assert.equal(fine.frames(), 21);
        // 20 frames are some 1,000 packets: the stuck viewer's socket was given 256 and the
        // rest of the frame that crossed that (and an RTCP report or two), no more.
        assert.ok(held > 256 && held < 256 + 60, `${held} sends held by the stuck socket`);
      } finally {
        await stuck.peer.client.close();
        await fine.peer.client.close();
      }
    }, registry);
  } finally {
    dgram.Socket.prototype.send = send;
  }
});

Deno.test("WHEP: a viewer that vanishes is ended after peerTimeoutMs; the other viewer gets every frame", async () => {
  const registry = new Registry();
  const handle = liveStream(registry);
  // werift viewers send receiver reports every 0.5 to 1.5 s: the one that stays is heard.
  await withServer({ peerTimeoutMs: 2500 }, async (base, _registry, log) => {
    const [vanished, stays] = await twoViewers(base, handle);
    try {
      for (const transport of vanished.peer.client.dtlsTransports) {
        transport.iceTransport.connection.send = () => Promise.resolve();
      }
      await publish(handle, 100, 40);
      await log.waitFor(/ended: no packet from the peer for 2500 ms/);
      await subscribers(handle, 1);
      await stays.until(101);
      assert.equal(stays.frames(), 101);
    } finally {
      await vanished.peer.client.close();
      await stays.peer.client.close();
    }
  }, registry);
});

Deno.test("WHEP: a viewer catching up from the replay at catchUpSpeed gets the GOP and the live frames that came meanwhile, each once, in order", async () => {
  const registry = new Registry();
  const handle = liveStream(registry); // the keyframe at 0
  for (let i = 1; i < 30; i++) handle.publish(video(i * 3000, false)); // 1 s of GOP
  await withServer({ catchUpSpeed: 4 }, async (base) => {
    const paced = await viewer(base);
    try {
      await publish(handle, 10, 5, 30); // live while the replay is paced (some 250 ms)
      await paced.until(40);
      await sleep(100);
      // The server stamps video from its 90 kHz times, each 3000 apart.
      const steps = paced.timestamps.slice(1).map((ts, i) => ts - paced.timestamps[i]);
      assert.deepEqual(steps, new Array(39).fill(3000));
    } finally {
      await paced.peer.client.close();
    }
  }, registry);
});

Deno.test("WHEP: two viewers of one stream get the same RTP sequence numbers and payloads for each frame", async () => {
  const registry = new Registry();
  const handle = liveStream(registry);
  await withServer({}, async (base) => {
    const [a, b] = await twoViewers(base, handle);
    try {
      await publish(handle, 20, 5);
      await a.until(21);
      await b.until(21);
      await sleep(100);
      assert.notEqual(a.ssrc(), b.ssrc(), "each viewer's sender has its own SSRC");
      assert.ok(a.packets.length >= 21);
      assert.deepEqual(a.packets, b.packets);
    } finally {
      await a.peer.client.close();
      await b.peer.client.close();
    }
  }, registry);
});

Deno.test("WHEP: a viewer that skips frames to keep up gets sequence numbers without a gap", async () => {
  const registry = new Registry({ apps: { live: { capacity: 16, gopCapacity: 16 } } });
  const handle = liveStream(registry);
  await withServer({ maxLag: 1_000_000 }, async (base) => {
    const [slow, fast] = await twoViewers(base, handle);
    try {
      // The slow viewer's packets go out, but each send settles 300 ms later: the play line
      // skips it ahead to keyframes over frames the fast viewer's packets were made for.
      const original = RTCRtpSender.prototype.sendRtp;
      RTCRtpSender.prototype.sendRtp = function (this: RTCRtpSender, rtp) {
        const sent = original.call(this, rtp);
        return this.ssrc === slow.ssrc() ? sent.then(() => sleep(300)) : sent;
      };
      try {
        await publish(handle, 60, 5);
        await fast.until(61);
        await sleep(700);
      } finally {
        RTCRtpSender.prototype.sendRtp = original;
      }
      assert.ok(slow.frames() < 61, `the slow viewer skipped nothing (${slow.frames()} frames)`);
      const sequences = slow.packets.map((p) => p.sequence);
      const steps = sequences.slice(1).map((n, i) => (n - sequences[i]) & 0xffff);
      assert.deepEqual(steps, new Array(steps.length).fill(1));
    } finally {
      await slow.peer.client.close();
      await fast.peer.client.close();
    }
  }, registry);
});
