/**
 * WHIP/WHEP deadlines with werift peers: an offer that never connects frees its key at the
 * connect deadline, a failed DTLS handshake at once, a connected peer that falls silent (a
 * vanished player, a mute publisher) is ended after peerTimeoutMs, and a WHEP player that falls behind is dropped at maxLag.
 */

import assert from "node:assert/strict";
import { Registry } from "../../../mod.ts";
import { video } from "../../media/hls/_synthetic.ts";
import { makeOffer } from "./_offers.ts";
import { connectPeer, liveStream, post, withServer } from "./_peers.ts";

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
