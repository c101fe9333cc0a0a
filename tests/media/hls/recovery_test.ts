/**
 * The packager goes on through what a lossy or changing live source sends: media before
 * its CONFIG frame, a codec change, a track appearing, a second track of a kind. It skips
 * what it cannot use, says so once per condition, and ffmpeg decodes what it wrote.
 */

import assert from "node:assert/strict";
import {
  DirectoryStorage,
  type HlsPackagerOptions,
  type HlsSegmentType,
  MemoryStorage,
} from "../../../media/hls/mod.ts";
import { FrameFlags, hasFlag, type MediaFrame } from "../../../mod.ts";
import { decodeCheck } from "../../_util/ffmpeg.ts";
import { mp4Frames } from "../fmp4/_frames.ts";
import {
  assertPlays,
  assertSectionsPlay,
  assertSegmentStarts,
  h264Aac,
  h265Aac,
  packageFrames,
  parsePlaylist,
  withDir,
} from "./_hls.ts";
import { audio, audioConfig, text, videoConfig, videoFrames } from "./_synthetic.ts";

/** The fixtures' first video dts (B-frames: -2 frames) moved to 0. */
const SHIFT = 6000;

const isKey = (f: MediaFrame) => f.kind === "video" && hasFlag(f, FrameFlags.KEYFRAME);

/** Packages `frames` as VOD into a temp dir and checks what ffmpeg makes of it. */
async function packageAndPlay(
  frames: readonly MediaFrame[],
  segmentType: HlsSegmentType,
  check: (dir: string, skipped: string[], stats: { dropped: number; frames: number }) => unknown,
  options: Partial<HlsPackagerOptions> = {},
): Promise<void> {
  // Each run between discontinuities is checked on its own (a codec change cannot be read
  // in one go by ffmpeg's HLS reader); without one, the whole output is.
  await withDir(async (dir) => {
    const skipped: string[] = [];
    const packager = await packageFrames(frames, {
      storage: new DirectoryStorage(dir),
      segmentType,
      playlistType: "vod",
      onSkip: (what) => skipped.push(what),
      ...options,
    });
    if (await assertSectionsPlay(dir) === 1) await assertPlays(dir);
    await assertSegmentStarts(dir, parsePlaylist(await Deno.readTextFile(`${dir}/stream.m3u8`)));
    await check(dir, skipped, packager.stats);
  });
}

for (const segmentType of ["ts", "fmp4"] as const) {
  Deno.test(`recovery (${segmentType}): media before its CONFIG frame is skipped, said once per track, and packaging starts at the next keyframe after it`, async () => {
    const { configs, frames } = await mp4Frames(await h264Aac(), SHIFT);
    // A lossy start: the configs arrive with the second GOP, the media before them is lost.
    const second = frames.findIndex((f, i) => i > 0 && isKey(f));
    const input = [...frames.slice(0, second), ...configs, ...frames.slice(second)];
    await packageAndPlay(input, segmentType, async (dir, skipped, stats) => {
      assert.deepEqual(skipped, [
        "track 0 (video h264): media frame before its CONFIG frame; the track is skipped until a CONFIG frame and a keyframe",
        "track 1 (audio aac): media frame before its CONFIG frame; the track is skipped until a CONFIG frame and a keyframe",
      ]);
      assert.ok(stats.dropped >= second, `dropped ${stats.dropped}`);
      const playlist = parsePlaylist(await Deno.readTextFile(`${dir}/stream.m3u8`));
      assert.ok(playlist.ended);
      const total = playlist.segments.reduce((sum, s) => sum + s.duration, 0);
      assert.ok(total > 4.5 && total < 5.5, `the last 5 of 6 s are packaged: ${total} s`);
    });
  });

  Deno.test(`recovery (${segmentType}): a codec change mid-stream (H.264 to H.265, its media first) goes on after EXT-X-DISCONTINUITY`, async () => {
    const a = await mp4Frames(await h264Aac(), SHIFT);
    const b = await mp4Frames(await h265Aac(), SHIFT);
    const end = Math.max(...a.frames.map((f) => f.dts)) + 3000;
    const later = (f: MediaFrame) => ({ ...f, pts: f.pts + end, dts: f.dts + end });
    // The new codec's first GOP comes before its configs (lost); then configs and the rest.
    const second = b.frames.findIndex((f, i) => i > 0 && isKey(f));
    const input = [
      ...a.configs,
      ...a.frames,
      ...b.frames.slice(0, second).map(later),
      ...b.configs,
      ...b.frames.slice(second).map(later),
    ];
    await packageAndPlay(input, segmentType, async (dir, skipped) => {
      assert.deepEqual(skipped, [
        "track 0 (video h265): media frame before its CONFIG frame; the track is skipped until a CONFIG frame and a keyframe",
      ]);
      const playlist = parsePlaylist(await Deno.readTextFile(`${dir}/stream.m3u8`));
      const discontinuities = playlist.segments.filter((s) => s.discontinuity).length;
      assert.equal(discontinuities, 1);
      const master = await Deno.readTextFile(`${dir}/index.m3u8`);
      assert.match(
        master,
        /CODECS="(hvc1|hev1)[^"]*,mp4a\.40\.2"/,
        "the master names the codec now",
      );
      if (segmentType === "fmp4") {
        assert.deepEqual([...new Set(playlist.segments.map((s) => s.map))], [
          "init0.mp4",
          "init1.mp4",
        ]);
      }
    });
  });

  Deno.test(`recovery (${segmentType}): an audio track appearing after video started, and a second video track, do not stop packaging`, async () => {
    const { configs, frames } = await mp4Frames(await h264Aac(), SHIFT);
    const [video, aac] = configs;
    const audioStart = 2.5 * 90000;
    const second = { ...video, track: 2 };
    const extraAt = frames.filter((f) => f.kind === "video")[100];
    const input = [
      video,
      ...frames.filter((f) => f.kind === "video" || f.dts >= audioStart).flatMap((f) =>
        f.kind === "audio" && f.dts >= audioStart && f.dts < audioStart + 2000
          ? [aac, f] // the audio track appears
          : f === extraAt
          ? [second, { ...f, track: 2 }, f] // so does a second video track, briefly
          : [f]
      ),
    ];
    await packageAndPlay(input, segmentType, async (dir, skipped) => {
      assert.deepEqual(skipped, [
        "track 2 (video h264): HLS takes one video track; this one is skipped",
      ]);
      const playlist = parsePlaylist(await Deno.readTextFile(`${dir}/stream.m3u8`));
      assert.ok(
        playlist.segments.some((s) => s.discontinuity),
        "the new track starts a discontinuity",
      );
      const master = await Deno.readTextFile(`${dir}/index.m3u8`);
      assert.match(master, /CODECS="avc1[^"]*,mp4a\.40\.2"/);
      if (segmentType === "ts") {
        // Across the new track, PIDs and continuity counters go on: ffmpeg reads the whole
        // playlist in one go without a corrupt packet (it only notes the new audio stream).
        const whole = await decodeCheck(`${dir}/index.m3u8`);
        assert.equal(whole.code, 0, whole.stderr);
        assert.doesNotMatch(whole.stderr, /corrupt|Continuity/i);
        assert.match(whole.stderr, /New audio stream/);
      }
    });
  });
}

Deno.test("recovery: conditions are told once each until they clear, and an unusable CONFIG is ignored", async () => {
  const storage = new MemoryStorage();
  const skipped: string[] = [];
  const av1 = { ...videoConfig(), codec: "av1" as const, data: new Uint8Array([0x81]) };
  const frames = [
    audio(0), // before any CONFIG
    audio(1920),
    av1, // cannot be used
    av1,
    videoConfig(),
    audioConfig(),
    ...videoFrames(3, 25),
    audio(90000),
  ];
  await packageFrames(frames, { storage, onSkip: (what) => skipped.push(what) });
  assert.deepEqual(skipped, [
    "track 1 (audio aac): media frame before its CONFIG frame; the track is skipped until a CONFIG frame and a keyframe",
    "track 0 (video av1): CONFIG frame not usable (track 0: codec av1 is not supported in fMP4); ignored",
  ]);
  const playlist = parsePlaylist(text(storage, "stream.m3u8"));
  assert.ok(playlist.ended);
  assert.ok(playlist.segments.length >= 1);
});
