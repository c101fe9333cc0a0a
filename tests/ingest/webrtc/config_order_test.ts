/**
 * WHIP ingest keeps the kernel's contract: H.264 joined mid-GOP (no SPS/PPS yet) publishes
 * nothing until a keyframe with parameter sets, and Opus gets its OpusHead CONFIG first.
 * The ingest runs on a stand-in for werift's peer connection, fed RTP directly.
 */

import assert from "node:assert/strict";
import type { RTCPeerConnection } from "werift";
import { FrameFlags, type MediaFrame, Registry, silentLogger } from "../../../mod.ts";
import { PeerMediaReceiver } from "../../../ingest/webrtc/_receiver.ts";
import { assertConfigFirst } from "../../_util/frames.ts";

const SPS = new Uint8Array([0x67, 0x42, 0xc0, 0x1e, 0xda, 0x05, 0x07, 0xe4]);
const PPS = new Uint8Array([0x68, 0xce, 0x3c, 0x80]);
const SLICE = new Uint8Array([0x41, 0x9a, 0x02, 0x04, 0x08]);
const IDR = new Uint8Array([0x65, 0x88, 0x84, 0x02, 0x04]);
const OPUS = new Uint8Array([0xfc, 0xff, 0xfe]); // a 20 ms CELT frame

interface FakeRtp {
  header: {
    payloadType: number;
    marker: boolean;
    sequenceNumber: number;
    timestamp: number;
    ssrc: number;
  };
  payload: Uint8Array;
}

/** A received track: what PeerMediaReceiver uses of werift's MediaStreamTrack. */
function fakeTrack(kind: "video" | "audio") {
  const listeners: ((rtp: FakeRtp) => void)[] = [];
  return {
    kind,
    ssrc: kind === "video" ? 1 : 2,
    onReceiveRtp: { subscribe: (f: (rtp: FakeRtp) => void) => void listeners.push(f) },
    receive: (rtp: FakeRtp) => listeners.forEach((f) => f(rtp)),
  };
}

Deno.test("whip ingest: media before its parameter sets is not published; Opus gets its OpusHead first", async () => {
  const registry = new Registry();
  const handle = registry.startPublish("live", "order", { protocol: "webrtc" });
  const frames: MediaFrame[] = [];
  const reader = handle.subscribe().getReader();
  const video = fakeTrack("video");
  const audio = fakeTrack("audio");
  let plis = 0;
  const pc = {
    getTransceivers: () =>
      [video, audio].map((track) => ({
        receiver: { tracks: [track], sendRtcpPLI: () => Promise.resolve(void plis++) },
      })),
    onTrack: { subscribe: () => {} },
  } as unknown as RTCPeerConnection;
  const ingest = new PeerMediaReceiver(pc, {
    frame: (frame) => handle.publish(frame),
    logger: silentLogger,
    label: "whip live/order",
    keyframeIntervalMs: 0,
  });
  let seq = 0;
  const send = (
    track: ReturnType<typeof fakeTrack>,
    ts: number,
    marker: boolean,
    nal: Uint8Array,
  ) =>
    track.receive({
      header: { payloadType: 96, marker, sequenceNumber: seq++, timestamp: ts, ssrc: track.ssrc },
      payload: nal,
    });
  send(video, 3000, true, SLICE); // joined mid-GOP
  send(video, 6000, true, SLICE);
  send(audio, 960, true, OPUS);
  for (const [i, nal] of [SPS, PPS, IDR].entries()) send(video, 9000, i === 2, nal);
  send(video, 12000, true, SLICE);
  send(audio, 1920, true, OPUS);
  ingest.close();
  registry.endPublish(handle);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    frames.push(value);
  }
  assert.equal(assertConfigFirst(frames, "whip"), 4);
  const videoFlags = frames.filter((f) => f.kind === "video").map((f) => f.flags);
  assert.deepEqual(videoFlags, [FrameFlags.CONFIG, FrameFlags.KEYFRAME, FrameFlags.NONE]);
  assert.ok(plis >= 1, "a keyframe was asked for");
});
