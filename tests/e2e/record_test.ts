/**
 * `cli.ts serve --record DIR`: every publish is recorded to a directory of its own as an HLS
 * EVENT playlist that ends when the publish does, and ffmpeg decodes each recording cleanly.
 */

import assert from "node:assert/strict";
import { decodeCheck, probePackets, Procs, publishLive } from "../_util/ffmpeg.ts";
import { startServe, waitFor } from "../_util/serve.ts";
import { parsePlaylist } from "../media/hls/_hls.ts";
import { testsWith } from "../_util/tools.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg", "ffprobe"] });

const procs = new Procs();

for (const segmentType of ["ts", "fmp4"] as const) {
  test.ffmpeg(`record e2e: two publishes of one key become two ${segmentType} recordings`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "arcly-record-" });
    const server = await startServe(["rtmp", "http"], [
      ...["--record", dir, "--hls-segment-type", segmentType],
    ]);
    const rtmp = `rtmp://127.0.0.1:${server.ports.rtmp}/live`;
    const api = `http://127.0.0.1:${server.ports.http}/v1/streams/live/rec`;
    try {
      for (const [i, [name, seconds]] of [["rec", 3], ["rec", 2], [".hidden", 1]].entries()) {
        const publishing = publishLive(procs, `${rtmp}/${name}`, Number(seconds));
        if (i === 0) {
          const live = await waitFor("the recorded stream in the API", async () => {
            const response = await fetch(api);
            if (!response.ok) return void await response.body?.cancel();
            const summary = await response.json();
            return summary.recording ? summary : undefined;
          });
          assert.equal(live.state, "publishing", "a recorded stream is still publishing");
        }
        const result = await publishing;
        assert.equal(result.code, 0, result.stderr);
      }
    } finally {
      procs.killAll();
      const code = await server.stop();
      assert.equal(code, 0, `serve exits 0 on SIGTERM:\n${server.log.join("\n")}`);
    }
    try {
      const log = server.log.join("\n");
      assert.match(log, /record live\/\.hidden: not recorded/);
      const recordings = [];
      for await (const entry of Deno.readDir(`${dir}/live/rec`)) recordings.push(entry.name);
      recordings.sort();
      assert.equal(recordings.length, 2, `two recordings: ${recordings}`);
      assert.match(recordings[0], /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ(-\d+)?$/);
      for (const [i, name] of recordings.entries()) {
        const path = `${dir}/live/rec/${name}`;
        const playlist = parsePlaylist(await Deno.readTextFile(`${path}/stream.m3u8`));
        assert.equal(playlist.tags.get("EXT-X-PLAYLIST-TYPE"), "EVENT");
        assert.ok(playlist.ended, "the playlist ends with the publish");
        const check = await decodeCheck(`${path}/index.m3u8`);
        assert.equal(check.code, 0, check.stderr);
        assert.equal(check.stderr, "", `${name} decodes without a warning`);
        const video = (await probePackets(`${path}/index.m3u8`)).find((s) =>
          s.codecType === "video"
        )!;
        const expected = (i === 0 ? 3 : 2) * 25;
        assert.ok(
          video.packets.length >= expected - 2 && video.packets.length <= expected,
          `${name}: ${video.packets.length} of ${expected} video frames`,
        );
        assert.ok(video.packets[0].keyframe, "a recording starts on a keyframe");
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
