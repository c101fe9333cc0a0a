import assert from "node:assert/strict";
import { FrameFlags, type MediaFrame, Registry } from "../../../mod.ts";
import { httpFlv, serveHttp } from "../../../ingest/http/mod.ts";
import { within } from "../../_util/within.ts";

function video(ms: number, key: boolean, size: number): MediaFrame {
  const data = new Uint8Array(size);
  new DataView(data.buffer).setUint32(0, size - 4);
  data[4] = key ? 0x65 : 0x41;
  const flags = key ? FrameFlags.KEYFRAME : FrameFlags.NONE;
  return { track: 0, kind: "video", codec: "h264", pts: ms * 90, dts: ms * 90, flags, data };
}

async function readToEnd(conn: Deno.Conn): Promise<number> {
  const buf = new Uint8Array(256 * 1024);
  let total = 0;
  for (let n; (n = await conn.read(buf)) !== null;) total += n;
  return total;
}

Deno.test("http-flv: a reader that never reads is evicted after stallTimeoutMs; the stream goes on", async () => {
  const registry = new Registry();
  const server = serveHttp({
    routes: [httpFlv(registry, { stallTimeoutMs: 300 })],
    hostname: "127.0.0.1",
    port: 0,
  });
  const handle = registry.startPublish("live", "stuck", { protocol: "test" });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  try {
    const request = "GET /live/stuck.flv HTTP/1.1\r\nhost: localhost\r\n\r\n";
    await conn.write(new TextEncoder().encode(request));
    const until = Date.now() + 5000;
    while (handle.subscriberCount === 0 && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.equal(handle.subscriberCount, 1);
    // Far more than the socket buffers hold, at a pace that never laps the ring: only the
    // stall, not the lag, can end this reader.
    for (let i = 0; i < 400 && handle.subscriberCount > 0; i++) {
      handle.publish(video(i * 40, i % 25 === 0, 64 * 1024));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.equal(handle.subscriberCount, 0, "the stalled reader was let go");
    assert.equal(handle.closed, false);
    // The server closed the response: reading what was buffered ends.
    assert.ok(await within(readToEnd(conn), 5000, "the end of the response") > 0);
  } finally {
    conn.close();
    registry.endPublish(handle, "ended");
    await server.close();
  }
});

Deno.test("http-flv: a batch holding only frames of a track FLV leaves out does not stall the player", async () => {
  const registry = new Registry();
  const server = serveHttp({ routes: [httpFlv(registry)], hostname: "127.0.0.1", port: 0 });
  const handle = registry.startPublish("live", "tracks", { protocol: "test" });
  try {
    const response = await fetch(`http://127.0.0.1:${server.addr.port}/live/tracks.flv`);
    const body = new Response(response.body).arrayBuffer();
    const until = Date.now() + 5000;
    while (handle.subscriberCount === 0 && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const pause = () => new Promise((resolve) => setTimeout(resolve, 20));
    handle.publish(video(0, true, 100));
    await pause();
    handle.publish({ ...video(40, false, 100), track: 5 }); // a second video track: left out
    await pause();
    handle.publish(video(80, false, 100));
    await pause();
    registry.endPublish(handle, "ended");
    const flv = new Uint8Array(await within(body, 5000, "the end of the FLV body"));
    // header (13) + two video tags of 11 + 5 + 100 bytes + 4 (PreviousTagSize) each
    assert.equal(flv.length, 13 + 2 * (11 + 5 + 100 + 4));
  } finally {
    await server.close();
  }
});
