/**
 * WHEP media mapping with a werift client: frames of an ffmpeg-made H.264 file go into the
 * registry, the client plays them over DTLS/SRTP, and the access units it reassembles
 * must be the published ones, keyframes carrying the SPS/PPS of the cached config.
 */

import assert from "node:assert/strict";
import { RTCPeerConnection, useH264, useOPUS } from "werift";
import { FrameFlags, type MediaFrame, Registry } from "../../../mod.ts";
import { serveHttp } from "../../../ingest/http/server.ts";
import { WebRtcServer } from "../../../ingest/webrtc/mod.ts";
import { FlvReader } from "../../../media/flv/mod.ts";
import { parseAvcConfig } from "../../../media/codec/h264.ts";
import { lengthPrefixedFromNalUnits, splitLengthPrefixed } from "../../../media/codec/nal.ts";
import { H264Depacketizer, RtpPacket } from "../../../media/rtp/mod.ts";
import { makeFixture, testsrc } from "../../_util/ffmpeg.ts";

async function fixtureFrames(): Promise<MediaFrame[]> {
  const file = await makeFixture("whep.flv", [
    ...testsrc({ duration: 2 }),
    ...["-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", "25", "-f", "flv"],
  ]);
  const frames: MediaFrame[] = [];
  await (await Deno.open(file)).readable.pipeThrough(new FlvReader()).pipeTo(
    new WritableStream({ write: (frame) => void frames.push(frame) }),
  );
  return frames;
}

Deno.test("WHEP: a werift player gets the GOP then live frames, keyframes with SPS/PPS", async () => {
  const frames = await fixtureFrames();
  const config = frames.find((f) => f.flags & FrameFlags.CONFIG)!;
  const media = frames.filter((f) => !(f.flags & FrameFlags.CONFIG));
  assert.equal(media.length, 50);
  const { sps, pps } = parseAvcConfig(config.data);
  const expected = media.map((f) =>
    f.flags & FrameFlags.KEYFRAME
      ? lengthPrefixedFromNalUnits([...sps, ...pps, ...splitLengthPrefixed(f.data)])
      : f.data
  );

  const registry = new Registry();
  const handle = registry.startPublish("live", "cam");
  handle.publish(config);
  for (const frame of media.slice(0, 10)) handle.publish(frame); // the GOP a player replays
  const webrtc = new WebRtcServer({ registry });
  const http = serveHttp({ routes: [webrtc.route], hostname: "127.0.0.1", port: 0 });
  const client = new RTCPeerConnection({
    iceServers: [],
    codecs: { video: [useH264()], audio: [useOPUS()] },
  });
  const received: Uint8Array[] = [];
  const { promise: done, resolve } = Promise.withResolvers<void>();
  const depacketizer = new H264Depacketizer((_ts, au) => {
    received.push(au);
    if (received.length === expected.length) resolve();
  });
  const packet = new RtpPacket();
  try {
    client.addTransceiver("video", { direction: "recvonly" }).onTrack.subscribe((track) => {
      track.onReceiveRtp.subscribe((rtp) => {
        packet.payloadType = rtp.header.payloadType;
        packet.marker = rtp.header.marker;
        packet.sequence = rtp.header.sequenceNumber;
        packet.timestamp = rtp.header.timestamp;
        packet.payload = rtp.payload;
        depacketizer.push(packet);
      });
    });
    await client.setLocalDescription(await client.createOffer());
    const res = await fetch(`http://127.0.0.1:${http.addr.port}/live/cam/whep`, {
      method: "POST",
      headers: { "content-type": "application/sdp" },
      body: client.localDescription!.sdp,
    });
    const answer = await res.text();
    assert.equal(res.status, 201, answer);
    await client.setRemoteDescription({ type: "answer", sdp: answer });
    await client.connectionStateChange.watch((state) => state === "connected", 15_000);
    while (handle.subscriberCount === 0) await new Promise((r) => setTimeout(r, 20));
    for (const frame of media.slice(10)) handle.publish(frame); // live
    const timer = setTimeout(() => resolve(), 20_000);
    await done;
    clearTimeout(timer);
    assert.equal(received.length, expected.length, `${depacketizer.lost} lost`);
    for (let i = 0; i < expected.length; i++) assert.deepEqual(received[i], expected[i], `AU ${i}`);
  } finally {
    await client.close();
    await webrtc.close();
    await http.close();
    registry.closeAll();
  }
});
