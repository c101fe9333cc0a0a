/**
 * FLV and MPEG-TS made by ffmpeg, read by our FlvReader / TsDemuxer, packaged as
 * HLS: what `cli.ts package` does.
 */

import assert from "node:assert/strict";
import { FlvReader } from "../../../media/flv/mod.ts";
import { DirectoryStorage, HlsPackager } from "../../../media/hls/mod.ts";
import { TsDemuxer } from "../../../media/ts/mod.ts";
import { type MediaFrame, StreamHandle } from "../../../mod.ts";
import { makeFixture, sine, testsrc } from "../../_util/ffmpeg.ts";
import { assertPlays, assertSegmentStarts, countPackets, parsePlaylist, withDir } from "./_hls.ts";
import { testsWith } from "../../_util/tools.ts";

const test = await testsWith({
  ffmpeg: ["ffmpeg", "ffprobe"],
  x265: ["ffmpeg", "ffprobe", "ffmpeg:libx265"],
});

/** 6 s of 320x240 30 fps H.264 (B-frames, 1 s GOP) and 44.1 kHz AAC in FLV. */
function flv(): Promise<string> {
  return makeFixture("hls-h264-aac.flv", [
    ...testsrc({ rate: 30, duration: 6 }),
    ...sine({ duration: 6, sampleRate: 44100 }),
    ..."-c:v libx264 -g 30 -bf 2 -c:a aac".split(" "),
  ]);
}

/** 6 s of 320x240 25 fps H.265 (B-frames, 1 s GOP) and 48 kHz AAC in MPEG-TS. */
function hevcTs(): Promise<string> {
  return makeFixture("hls-h265-aac.ts", [
    ...testsrc({ duration: 6 }),
    ...sine({ duration: 6 }),
    ..."-c:v libx265 -x265-params log-level=error:keyint=25:min-keyint=25:bframes=2".split(" "),
    ..."-c:a aac".split(" "),
  ]);
}

/** Packages `input` through `demuxer` and checks ffmpeg plays every frame of it. */
async function packageInput(
  input: string,
  demuxer: TransformStream<Uint8Array, MediaFrame>,
  segmentType: "ts" | "fmp4",
): Promise<void> {
  await withDir(async (dir) => {
    const file = await Deno.open(input);
    const packager = new HlsPackager({
      storage: new DirectoryStorage(dir),
      segmentType,
      playlistType: "vod",
    });
    await file.readable.pipeThrough(demuxer).pipeTo(packager);
    await assertPlays(dir);
    assert.deepEqual(await countPackets(`${dir}/index.m3u8`), await countPackets(input));
    const playlist = parsePlaylist(await Deno.readTextFile(`${dir}/stream.m3u8`));
    assert.equal(playlist.segments.length, 3);
    await assertSegmentStarts(dir, playlist);
  });
}

for (const segmentType of ["ts", "fmp4"] as const) {
  test.ffmpeg(`demux: ffmpeg FLV (H.264 + AAC) → FlvReader → ${segmentType} VOD, every frame plays`, async () => {
    await packageInput(await flv(), new FlvReader(), segmentType);
  });

  test.x265({
    name: `demux: ffmpeg TS (H.265 + AAC) → TsDemuxer → ${segmentType} VOD, every frame plays`,
    fn: async () => {
      await packageInput(await hevcTs(), new TsDemuxer(), segmentType);
    },
  });
}

test.ffmpeg("demux: StreamHandle.packageTo drives the packager and closes it when the stream ends", async () => {
  const input = await flv();
  await withDir(async (dir) => {
    const handle = new StreamHandle({ app: "live", stream: "flv", capacity: 4096 });
    const packager = new HlsPackager({ storage: new DirectoryStorage(dir), segmentType: "fmp4" });
    const done = handle.packageTo(packager);
    const file = await Deno.open(input);
    for await (const frame of file.readable.pipeThrough(new FlvReader())) handle.publish(frame);
    handle.close();
    await done;
    const playlist = parsePlaylist(await Deno.readTextFile(`${dir}/stream.m3u8`));
    assert.ok(playlist.ended, "closing the stream ends the live playlist");
    await assertPlays(dir);
    assert.deepEqual(await countPackets(`${dir}/index.m3u8`), await countPackets(input));
  });
});
