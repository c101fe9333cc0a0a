/**
 * Path sources with real components: server A has the camera (ffmpeg publishing to it),
 * server B's config pulls it as `live/cam`, and ffmpeg plays from B: started when the
 * first reader comes, stopped after the last one left, continued across the camera's
 * restart.
 */

import assert from "node:assert/strict";
import { probePackets, Procs, publishLive } from "../_util/ffmpeg.ts";
import { assertPlays, recordPlay } from "../_util/play.ts";
import { type InProcessServer, startServer, waitFor } from "../_util/serve.ts";
import { testsWith } from "../_util/tools.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg", "ffprobe"] });

/** Server B, pulling A's `live/cam` from `url` on demand. */
function edge(url: string, transport?: "tcp" | "udp"): Promise<InProcessServer> {
  return startServer(["rtmp"], {
    paths: {
      "live/cam": {
        source: url,
        sourceOnDemand: true,
        sourceCloseAfterMs: 500,
        ...(transport && { rtspTransport: transport }),
      },
    },
  });
}

/** Lines of `server`'s log that match `re`. */
function count(server: InProcessServer, re: RegExp): number {
  return server.log.lines.filter((line) => re.test(line)).length;
}

/** How B reaches A's camera, per source kind. */
const SOURCES: { name: string; url: (a: InProcessServer) => string; transport?: "tcp" | "udp" }[] =
  [
    {
      name: "rtsp:// over TCP",
      url: (a) => `rtsp://127.0.0.1:${a.ports.rtsp}/live/cam`,
      transport: "tcp",
    },
    {
      name: "rtsp:// over UDP",
      url: (a) => `rtsp://127.0.0.1:${a.ports.rtsp}/live/cam`,
      transport: "udp",
    },
    { name: "rtmp://", url: (a) => `rtmp://127.0.0.1:${a.ports.rtmp}/live/cam` },
    // H.264 with B-frames over WebRTC: decode times recovered from picture order counts.
    { name: "WHEP", url: (a) => `http://127.0.0.1:${a.ports.http}/live/cam/whep` },
  ];

for (const { name, url, transport } of SOURCES) {
  test.ffmpeg(`pull source: ${name}, on demand, stopped after the last reader`, async () => {
    const procs = new Procs();
    const a = await startServer(["rtmp", "rtsp", "http"]);
    const b = await edge(url(a), transport);
    try {
      const camera = publishLive(procs, `rtmp://127.0.0.1:${a.ports.rtmp}/live/cam`, 12);
      await waitFor("the camera on A", () => a.server.registry.get("live", "cam"));
      assert.equal(
        b.server.registry.get("live", "cam"),
        undefined,
        "nothing pulled before a reader",
      );
      const file = await recordPlay(procs, `rtmp://127.0.0.1:${b.ports.rtmp}/live/cam`, 3);
      await assertPlays(file, `played from B (${name})`);
      await b.log.waitFor(/source live\/cam: no reader for 500 ms; stopping/, 10_000);
      await waitFor(
        "B's copy to end",
        () => b.server.registry.get("live", "cam") ? undefined : true,
      );
      assert.equal(count(b, /publish live\/cam via pull/), 1);
      assert.equal(count(b, /unpublish live\/cam \(ended\)/), 1);
      assert.ok(a.server.registry.get("live", "cam"), "the camera goes on");
      await camera;
    } finally {
      procs.killAll();
      await b.stop();
      await a.stop();
    }
  });
}

test.ffmpeg("pull source: a camera that restarts continues B's stream after a discontinuity", async () => {
  const procs = new Procs();
  const a = await startServer(["rtmp", "rtsp"]);
  const b = await edge(`rtsp://127.0.0.1:${a.ports.rtsp}/live/cam`, "tcp");
  const camera = `rtmp://127.0.0.1:${a.ports.rtmp}/live/cam`;
  try {
    const first = publishLive(procs, camera, 4);
    await waitFor("the camera on A", () => a.server.registry.get("live", "cam"));
    // One reader across the restart: 4 s of the first run, the gap, then the second run.
    const reading = recordPlay(procs, `rtmp://127.0.0.1:${b.ports.rtmp}/live/cam`, 8);
    assert.equal((await first).code, 0);
    const second = publishLive(procs, camera, 10);
    const file = await reading;
    await second;
    assert.equal(count(b, /publish live\/cam via pull/), 1, "one publish on B throughout");
    assert.ok(count(b, /source live\/cam: live/) >= 2, "B's source connected again");
    const video = (await probePackets(file)).find((s) => s.codecType === "video")!;
    const keyframes = video.packets.filter((p) => p.keyframe).length;
    assert.ok(video.packets.length > 4 * 25, `frames of both runs (${video.packets.length})`);
    assert.ok(keyframes >= 5, `keyframes of both runs (${keyframes})`);
    await assertPlays(file, "played across the restart");
  } finally {
    procs.killAll();
    await b.stop();
    await a.stop();
  }
});

test.ffmpeg("pull source: an HLS playlist pulled from start-up on, played over RTMP", async () => {
  const procs = new Procs();
  const a = await startServer(["rtmp", "http"]);
  const camera = publishLive(procs, `rtmp://127.0.0.1:${a.ports.rtmp}/live/cam`, 14);
  const b = await startServer(["rtmp"], {
    paths: { "live/cam": { source: `http://127.0.0.1:${a.ports.http}/live/cam/index.m3u8` } },
  });
  try {
    // Kept, not on demand: B publishes once A's playlist has segments, with no reader.
    await waitFor("B's copy", () => b.server.registry.get("live", "cam"));
    const file = await recordPlay(procs, `rtmp://127.0.0.1:${b.ports.rtmp}/live/cam`, 3);
    await assertPlays(file, "HLS pulled into B, played over RTMP");
    assert.equal(b.server.registry.get("live", "cam")?.metadata().ingestProtocol, "pull");
    await camera;
  } finally {
    procs.killAll();
    await b.stop();
    await a.stop();
  }
});
