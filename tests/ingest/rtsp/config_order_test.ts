/**
 * RTSP ingest keeps the kernel's contract: H.264 announced without parameter sets and
 * joined mid-GOP publishes nothing until a keyframe with SPS/PPS, and then the CONFIG first.
 */

import assert from "node:assert/strict";
import { FrameFlags, type MediaFrame, Registry } from "../../../mod.ts";
import { serveRtsp } from "../../../ingest/rtsp/mod.ts";
import { assertConfigFirst } from "../../_util/frames.ts";
import { LogLines } from "../../_util/log.ts";
import { within } from "../../_util/within.ts";
import { rtpBytes } from "../../media/rtp/_util.ts";
import { RtspClient } from "./_client.ts";
import { announceSdp } from "./_util.ts";

const SPS = new Uint8Array([0x67, 0x42, 0xc0, 0x1e, 0xda, 0x05, 0x07, 0xe4]);
const PPS = new Uint8Array([0x68, 0xce, 0x3c, 0x80]);
const SLICE = new Uint8Array([0x41, 0x9a, 0x02, 0x04, 0x08]);
const IDR = new Uint8Array([0x65, 0x88, 0x84, 0x02, 0x04]);
const SDP = announceSdp(); // no sprop-parameter-sets

Deno.test("rtsp ingest: H.264 without sprop-parameter-sets, joined mid-GOP, publishes no media before its CONFIG frame", async () => {
  const registry = new Registry();
  const server = serveRtsp({
    registry,
    hostname: "127.0.0.1",
    port: 0,
    udp: false,
    logger: new LogLines(),
  });
  const url = `rtsp://127.0.0.1:${server.addr.port}/live/order`;
  const client = await RtspClient.open(server.addr.port);
  try {
    const announce = await client.request("ANNOUNCE", url, {
      "Content-Type": "application/sdp",
    }, SDP);
    assert.equal(announce.status, 200);
    const setup = await client.request("SETUP", `${url}/streamid=0`, {
      Transport: "RTP/AVP/TCP;unicast;interleaved=0-1;mode=record",
    });
    const session = setup.headers.get("session")!.split(";")[0];
    assert.equal((await client.request("RECORD", url, { Session: session })).status, 200);
    const handle = registry.get("live", "order")!;
    const frames: MediaFrame[] = [];
    const collected = (async () => {
      for await (const f of handle.subscribe()) frames.push(f);
    })();
    let seq = 100;
    // Two access units of a GOP joined late, then a keyframe with its parameter sets.
    const units = [[SLICE], [SLICE], [SPS, PPS, IDR], [SLICE], [SLICE], [SPS, PPS, IDR], [SLICE]];
    for (const [i, nals] of units.entries()) {
      for (const [n, nal] of nals.entries()) {
        await client.interleave(0, rtpBytes(seq++, 9000 + i * 3600, n === nals.length - 1, nal));
      }
    }
    await within(
      (async () => {
        while (frames.filter((f) => f.kind === "video").length < 5) {
          await new Promise((r) => setTimeout(r, 20));
        }
      })(),
      5000,
      "the frames from the keyframe on",
    );
    registry.endPublish(handle);
    await collected;
    assertConfigFirst(frames, "rtsp");
    assert.equal(frames[0].flags, FrameFlags.CONFIG);
    assert.equal(frames[1].flags, FrameFlags.KEYFRAME);
  } finally {
    client.close();
    await server.close();
    await client.closed;
  }
});
