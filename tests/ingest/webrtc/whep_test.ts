/**
 * WHEP media mapping with a werift client: frames of an ffmpeg-made H.264 file go into the
 * registry, the client plays them over DTLS/SRTP, and the access units it reassembles
 * must be the published ones, keyframes carrying the SPS/PPS of the cached config. A PLI
 * or FIR from the client is answered from the GOP cache, never by asking upstream.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  RTCDtlsTransport,
  RTCPeerConnection,
  type RtcpPacket,
  type RTCRtpTransceiver,
  useH264,
  useOPUS,
} from "werift";
import { FrameFlags, type MediaFrame, Registry, type StreamHandle } from "../../../mod.ts";
import { serveHttp } from "../../../ingest/http/server.ts";
import { WebRtcServer } from "../../../ingest/webrtc/mod.ts";
import { FlvReader } from "../../../media/flv/mod.ts";
import { parseAvcConfig } from "../../../media/codec/h264.ts";
import { lengthPrefixedFromNalUnits, splitLengthPrefixed } from "../../../media/codec/nal.ts";
import { H264Depacketizer, RtpPacket } from "../../../media/rtp/mod.ts";
import { makeFixture, testsrc } from "../../_util/ffmpeg.ts";
import { testsWith } from "../../_util/tools.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg", "ffprobe"] });

/** The fixture's config, its 50 media frames and the AUs a player must get for each. */
async function fixture(): Promise<{ config: MediaFrame; media: MediaFrame[]; aus: Uint8Array[] }> {
  const file = await makeFixture("whep.flv", [
    ...testsrc({ duration: 2 }),
    ...["-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", "25", "-f", "flv"],
  ]);
  const frames: MediaFrame[] = [];
  await (await Deno.open(file)).readable.pipeThrough(new FlvReader()).pipeTo(
    new WritableStream({ write: (frame) => void frames.push(frame) }),
  );
  const config = frames.find((f) => f.flags & FrameFlags.CONFIG)!;
  const media = frames.filter((f) => !(f.flags & FrameFlags.CONFIG));
  assert.equal(media.length, 50);
  const { sps, pps } = parseAvcConfig(config.data);
  const aus = media.map((f) =>
    f.flags & FrameFlags.KEYFRAME
      ? lengthPrefixedFromNalUnits([...sps, ...pps, ...splitLengthPrefixed(f.data)])
      : f.data
  );
  return { config, media, aus };
}

/** A werift WHEP player: what it reassembled, with RTP timestamps. */
interface Player {
  client: RTCPeerConnection;
  video: RTCRtpTransceiver;
  /** The SSRC of the video the server sends. */
  ssrc(): number;
  received: { ts: number; au: Uint8Array }[];
  /** Resolves once `count` AUs have arrived; rejects after 15 s. */
  until(count: number): Promise<void>;
}

/** Play `live/cam` from a server with `handle` on it; `run` gets the connected player. */
async function withPlayer(
  handle: StreamHandle,
  registry: Registry,
  run: (player: Player) => Promise<void>,
): Promise<void> {
  const webrtc = new WebRtcServer({ registry });
  const http = serveHttp({ routes: [webrtc.route], hostname: "127.0.0.1", port: 0 });
  const client = new RTCPeerConnection({
    iceServers: [],
    codecs: { video: [useH264()], audio: [useOPUS()] },
  });
  const received: Player["received"] = [];
  let wanted = Infinity;
  let reached = () => {};
  const depacketizer = new H264Depacketizer((ts, au) => {
    received.push({ ts, au });
    if (received.length >= wanted) reached();
  });
  const packet = new RtpPacket();
  let ssrc = -1;
  try {
    const video = client.addTransceiver("video", { direction: "recvonly" });
    video.onTrack.subscribe((track) => {
      track.onReceiveRtp.subscribe((rtp) => {
        ssrc = rtp.header.ssrc;
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
    await run({
      client,
      video,
      ssrc: () => ssrc,
      received,
      until: (count) =>
        new Promise((resolve, reject) => {
          const timer = setTimeout(() => {
            reject(new Error(`${received.length} of ${count} AUs (${depacketizer.lost} lost)`));
          }, 15_000);
          wanted = count;
          reached = () => {
            clearTimeout(timer);
            wanted = Infinity;
            resolve();
          };
          if (received.length >= count) reached();
        }),
    });
  } finally {
    await client.close();
    await webrtc.close();
    await http.close();
    registry.closeAll();
  }
}

test.ffmpeg("WHEP: a werift player gets the GOP then live frames, keyframes with SPS/PPS", async () => {
  const { config, media, aus } = await fixture();
  const registry = new Registry();
  const handle = registry.startPublish("live", "cam");
  handle.publish(config);
  for (const frame of media.slice(0, 10)) handle.publish(frame); // the GOP a player replays
  await withPlayer(handle, registry, async ({ received, until }) => {
    for (const frame of media.slice(10)) handle.publish(frame); // live
    await until(aus.length);
    assert.equal(received.length, aus.length);
    for (let i = 0; i < aus.length; i++) assert.deepEqual(received[i].au, aus[i], `AU ${i}`);
  });
});

/** A FIR (RFC 5104) for `ssrc`, as werift has no call that sends one. */
function fir(ssrc: number): RtcpPacket {
  const bytes = Buffer.alloc(20);
  bytes.set([0x84, 206, 0, 4]); // V=2, FMT=4, PSFB, 4 words follow
  bytes.writeUInt32BE(1, 4); // packet sender; media source stays 0
  bytes.writeUInt32BE(ssrc, 12);
  bytes[16] = 1; // command sequence number
  return { type: 206, serialize: () => bytes } as unknown as RtcpPacket;
}

test.ffmpeg("WHEP: PLI and FIR are answered from the GOP cache, on the player's RTP clock, asking nobody upstream", async () => {
  const { config, media, aus } = await fixture();
  const rtpClock = (i: number) => media[i].pts; // 90 kHz, as the server stamps live video
  // Every RTCP payload-specific feedback any transport sends, but the client's own.
  const sendRtcp = RTCDtlsTransport.prototype.sendRtcp;
  const feedbackFrom: RTCDtlsTransport[] = [];
  RTCDtlsTransport.prototype.sendRtcp = function (this: RTCDtlsTransport, packets) {
    for (const p of packets) if (p.type === 206) feedbackFrom.push(this);
    return sendRtcp.call(this, packets);
  };
  let clientTransports: RTCDtlsTransport[] = [];
  const registry = new Registry();
  const handle = registry.startPublish("live", "cam");
  handle.publish(config);
  for (const frame of media.slice(0, 10)) handle.publish(frame);
  try {
    await withPlayer(handle, registry, async ({ client, video, ssrc, received, until }) => {
      clientTransports = client.dtlsTransports;
      const expected = aus.slice(0, 10); // the GOP replayed at the start
      const live = (from: number, to: number) => {
        for (const frame of media.slice(from, to)) handle.publish(frame);
        expected.push(...aus.slice(from, to));
      };
      live(10, 30); // keyframe at 25: the cached GOP is 25..29
      await until(30);

      await video.receiver.sendRtcpPLI(ssrc());
      expected.push(...aus.slice(25, 30)); // the GOP again, keyframe with SPS/PPS first
      await until(35);
      live(30, 40);
      await until(45);

      await client.dtlsTransports[0].sendRtcp([fir(ssrc())]);
      expected.push(...aus.slice(25, 40));
      await until(60);
      live(40, 50); // keyframe at 50 would start the next GOP
      await until(70);

      assert.equal(received.length, expected.length);
      for (let i = 0; i < expected.length; i++) {
        assert.deepEqual(received[i].au, expected[i], `AU ${i}`);
        if (i > 0) assert.ok(received[i].ts > received[i - 1].ts, `AU ${i}: RTP time goes back`);
      }
      // Live frames keep their own clock around the answers.
      const at = (n: number) => received[n].ts;
      assert.equal(at(35) - at(29), rtpClock(30) - rtpClock(29));
      assert.equal(at(60) - at(44), rtpClock(40) - rtpClock(39));
    });
  } finally {
    RTCDtlsTransport.prototype.sendRtcp = sendRtcp;
  }
  const ours = feedbackFrom.filter((t) => !clientTransports.includes(t));
  assert.equal(
    feedbackFrom.length - ours.length,
    2,
    "the client's PLI and FIR went through the spy",
  );
  assert.equal(ours.length, 0, "the server sent RTCP feedback (a PLI or FIR) itself");
});
