/**
 * Live HLS goes on when a publisher's first frames come before their CONFIG frames (a lossy
 * start): the packager skips them, says so once per track, and starts at the first keyframe
 * after the configs; ffmpeg plays the result over HTTP.
 */

import assert from "node:assert/strict";
import { FrameFlags, hasFlag, Registry } from "../../../mod.ts";
import { LiveHls, serveHttp } from "../../../ingest/http/mod.ts";
import { mp4Frames } from "../../media/fmp4/_frames.ts";
import { assertPlays, h264Aac, parsePlaylist } from "../../media/hls/_hls.ts";
import { LogLines } from "../../_util/log.ts";
import { waitFor } from "../../_util/serve.ts";

for (const segmentType of ["ts", "fmp4"] as const) {
  Deno.test(`live hls (${segmentType}): a publish whose first frames lack their configs still gets a playable playlist`, async () => {
    const { configs, frames } = await mp4Frames(await h264Aac(), 6000);
    const log = new LogLines();
    const registry: Registry = new Registry({
      observer: { onPublish: (key) => hls.start(key) },
    });
    const hls = new LiveHls({ registry, segmentType, logger: log });
    const server = serveHttp({ routes: [hls.route], hostname: "127.0.0.1", port: 0 });
    try {
      const handle = registry.startPublish("live", "lossy", { protocol: "test" });
      await waitFor("the packager", () => handle.subscriberCount > 0 || undefined);
      const second = frames.findIndex((f, i) =>
        i > 0 && f.kind === "video" && hasFlag(f, FrameFlags.KEYFRAME)
      );
      for (const f of frames.slice(0, second)) handle.publish(f); // its configs were lost
      for (const f of configs) handle.publish(f); // ... and are repeated with the next GOP
      for (const f of frames.slice(second)) handle.publish(f);
      registry.endPublish(handle);
      const base = `http://127.0.0.1:${server.addr.port}/live/lossy`;
      const playlist = await waitFor("the finished playlist", async () => {
        const response = await fetch(`${base}/stream.m3u8`);
        const body = await response.text();
        return response.ok && parsePlaylist(body).ended ? parsePlaylist(body) : undefined;
      });
      assert.ok(playlist.segments.length >= 2, `${playlist.segments.length} segments`);
      await assertPlays(base);
      assert.deepEqual(log.lines.filter((l) => l.includes("live/lossy")), [
        "warn hls live/lossy: track 0 (video h264): media frame before its CONFIG frame; the track is skipped until a CONFIG frame and a keyframe",
        "warn hls live/lossy: track 1 (audio aac): media frame before its CONFIG frame; the track is skipped until a CONFIG frame and a keyframe",
      ]);
    } finally {
      await server.close();
      await hls.close();
    }
  });
}
