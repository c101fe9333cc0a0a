/**
 * WHIP/WHEP deadlines with werift peers: an offer that never connects frees its key at the
 * connect deadline, a failed DTLS handshake at once, a connected peer that falls silent (a
 * vanished player, a mute publisher) is ended after peerTimeoutMs, and a WHEP player that falls behind is dropped at maxLag.
 */

import assert from "node:assert/strict";
import { RTCPeerConnection, useH264 } from "werift";
import { Registry } from "../../../mod.ts";
import { serveHttp } from "../../../ingest/http/server.ts";
import { WebRtcServer, type WebRtcServerOptions } from "../../../ingest/webrtc/mod.ts";
import { video, videoConfig } from "../../media/hls/_synthetic.ts";
import { LogLines } from "../../_util/log.ts";
import { makeOffer } from "./_offers.ts";

/** A server on a free port with the WebRTC route; `run` gets its base URL. */
async function withServer(
  options: Partial<WebRtcServerOptions>,
  run: (base: string, registry: Registry, log: LogLines) => Promise<void>,
  registry = new Registry(),
): Promise<void> {
  const log = new LogLines();
  const webrtc = new WebRtcServer({ hosts: ["127.0.0.1"], logger: log, ...options, registry });
  const http = serveHttp({ routes: [webrtc.route], hostname: "127.0.0.1", port: 0 });
  try {
    await run(`http://127.0.0.1:${http.addr.port}`, registry, log);
  } finally {
    await webrtc.close();
    await http.close();
    registry.closeAll();
  }
}

function post(url: string, sdp: string): Promise<Response> {
  return fetch(url, { method: "POST", body: sdp, headers: { "content-type": "application/sdp" } });
}

/** A werift peer that offers `direction` video, POSTs to `url` and applies the answer. */
async function connectPeer(
  url: string,
  direction: "sendonly" | "recvonly",
  editOffer: (sdp: string) => string = (sdp) => sdp,
): Promise<RTCPeerConnection> {
  const client = new RTCPeerConnection({ iceServers: [], codecs: { video: [useH264()] } });
  client.addTransceiver("video", { direction });
  await client.setLocalDescription(await client.createOffer());
  const res = await post(url, editOffer(client.localDescription!.sdp));
  const answer = await res.text();
  assert.equal(res.status, 201, answer);
  await client.setRemoteDescription({ type: "answer", sdp: answer });
  return client;
}

/** Claim `live/cam` with an H.264 config and a keyframe. */
function liveStream(registry: Registry) {
  const handle = registry.startPublish("live", "cam");
  handle.publish(videoConfig());
  handle.publish(video(0, true));
  return handle;
}

Deno.test("WHIP: an offer that never connects holds its key until the default connect deadline (5 s), then a second WHIP is accepted", async () => {
  await withServer({}, async (base, registry, log) => {
    const first = await post(`${base}/live/cam/whip`, makeOffer());
    await first.body?.cancel();
    assert.equal(first.status, 201);
    const second = await post(`${base}/live/cam/whip`, makeOffer());
    await second.body?.cancel();
    assert.equal(second.status, 409, "the key is held while the first may still connect");
    await log.waitFor(/ended: no ICE\/DTLS connection within 5000 ms/, 8000);
    assert.equal(registry.get("live", "cam"), undefined);
    const third = await post(`${base}/live/cam/whip`, makeOffer());
    await third.body?.cancel();
    assert.equal(third.status, 201);
  });
});

Deno.test("WHIP: a peer whose DTLS handshake fails frees the key at once, long before the connect deadline", async () => {
  await withServer({ connectTimeoutMs: 60_000 }, async (base, registry, log) => {
    // A fingerprint that is not the peer's certificate: the server's DTLS check fails.
    const client = await connectPeer(`${base}/live/cam/whip`, "sendonly", (sdp) =>
      sdp.replace(
        /a=fingerprint:(\S+) ([0-9A-Fa-f:]+)/,
        (_, hash, fp: string) => `a=fingerprint:${hash} ${fp.replace(/[0-9A-Fa-f]{2}/g, "AB")}`,
      ));
    try {
      await log.waitFor(/ended: peer connection failed/, 10_000);
      assert.equal(registry.get("live", "cam"), undefined);
    } finally {
      await client.close();
    }
  });
});

Deno.test("WHEP: a connected player that falls silent (no RTCP, no DTLS) is ended after peerTimeoutMs", async () => {
  const registry = new Registry();
  const handle = liveStream(registry);
  await withServer({ peerTimeoutMs: 400 }, async (base, _registry, log) => {
    const client = await connectPeer(`${base}/live/cam/whep`, "recvonly");
    try {
      await client.connectionStateChange.watch((state) => state === "connected", 10_000);
      await log.waitFor(/whep live\/cam session \S+ from \S+ connected/);
      // The player vanishes without a word: nothing it sends leaves it any more.
      for (const transport of client.dtlsTransports) {
        transport.iceTransport.connection.send = () => Promise.resolve();
      }
      await log.waitFor(/ended: no packet from the peer for 400 ms/, 10_000);
      assert.equal(handle.subscriberCount, 0);
      assert.equal(handle.closed, false, "the stream goes on");
    } finally {
      await client.close();
    }
  }, registry);
});

Deno.test("WHIP: a connected publisher that sends nothing frees its key after peerTimeoutMs", async () => {
  await withServer({ peerTimeoutMs: 400 }, async (base, registry, log) => {
    const client = await connectPeer(`${base}/live/cam/whip`, "sendonly"); // no track: no media
    try {
      await client.connectionStateChange.watch((state) => state === "connected", 10_000);
      await log.waitFor(/whip live\/cam session \S+ from \S+ connected/);
      await log.waitFor(/ended: no packet from the peer for 400 ms/, 10_000);
      assert.equal(registry.get("live", "cam"), undefined);
    } finally {
      await client.close();
    }
  });
});

Deno.test("WHEP: a player that falls more than maxLag frames behind is dropped", async () => {
  const registry = new Registry({ apps: { live: { capacity: 16, gopCapacity: 16 } } });
  const handle = liveStream(registry);
  await withServer({ maxLag: 4 }, async (base, _registry, log) => {
    const client = await connectPeer(`${base}/live/cam/whep`, "recvonly");
    try {
      await client.connectionStateChange.watch((state) => state === "connected", 10_000);
      while (handle.subscriberCount === 0) await new Promise((r) => setTimeout(r, 20));
      // Many rings at once: the player, mid-send, is left behind.
      for (let i = 1; i <= 400; i++) handle.publish(video(i * 3000, i % 100 === 0));
      await log.waitFor(/ended: the player fell more than 4 frames behind/, 10_000);
      assert.equal(handle.subscriberCount, 0);
    } finally {
      await client.close();
    }
  }, registry);
});
