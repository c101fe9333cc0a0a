/** The ffmpeg-made MP4 fixtures shared by the fMP4 and HLS tests. */

import { makeFixture, sine, testsrc } from "../../_util/ffmpeg.ts";

/** 2 s of 320x240 30 fps H.264 (High, B-frames, GOP 30) and mono 48 kHz AAC. */
export function h264AacMp4(): Promise<string> {
  return makeFixture("fmp4-h264-aac.mp4", [
    ...testsrc({ rate: 30 }),
    ...sine(),
    "-c:v",
    "libx264",
    "-g",
    "30",
    "-bf",
    "2",
    "-c:a",
    "aac",
    "-video_track_timescale",
    "90000",
  ]);
}

/** 2 s of 320x240 25 fps H.265 (B-frames, GOP 25) and 48 kHz stereo Opus. */
export function h265OpusMp4(): Promise<string> {
  return makeFixture("fmp4-h265-opus.mp4", [
    ...testsrc(),
    ...sine(),
    "-c:v",
    "libx265",
    "-x265-params",
    "log-level=error:keyint=25:min-keyint=25:bframes=2",
    "-tag:v",
    "hvc1",
    "-c:a",
    "libopus",
    "-ac",
    "2",
    "-video_track_timescale",
    "90000",
  ]);
}
