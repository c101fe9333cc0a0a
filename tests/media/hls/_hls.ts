/** Helpers of the HLS tests: fixtures, running the packager, reading playlists and segments. */

import assert from "node:assert/strict";
import { HlsPackager, type HlsPackagerOptions } from "../../../media/hls/mod.ts";
import { FrameFlags, type MediaFrame } from "../../../mod.ts";
import { mp4Frames } from "../fmp4/_frames.ts";
import {
  decodeCheck,
  ffmpeg,
  makeFixture,
  probePackets,
  run,
  sine,
  testsrc,
} from "../../_util/ffmpeg.ts";

/** 6 s of 320x240 30 fps H.264 (B-frames, 1 s GOP) and 48 kHz AAC. */
export function h264Aac(): Promise<string> {
  return makeFixture("hls-h264-aac.mp4", [
    ...testsrc({ rate: 30, duration: 6 }),
    ...sine({ duration: 6 }),
    ..."-c:v libx264 -g 30 -bf 2 -c:a aac -video_track_timescale 90000".split(" "),
  ]);
}

/** 6 s of 320x240 25 fps H.265 (B-frames, 1.6 s GOP) and 44.1 kHz AAC. */
export function h265Aac(): Promise<string> {
  return makeFixture("hls-h265-aac.mp4", [
    ...testsrc({ rate: 25, duration: 6 }),
    ...sine({ duration: 6, sampleRate: 44100 }),
    ..."-c:v libx265 -x265-params log-level=error:keyint=40:min-keyint=40:bframes=2".split(" "),
    ..."-tag:v hvc1 -c:a aac -video_track_timescale 90000".split(" "),
  ]);
}

/** 4 s of 160x120 30 fps H.264 and 880 Hz AAC: a different encoding to switch to. */
export function smallH264Aac(): Promise<string> {
  return makeFixture("hls-small-h264-aac.mp4", [
    ...testsrc({ size: "160x120", rate: 30, duration: 4 }),
    ...sine({ duration: 4, frequency: 880 }),
    ..."-c:v libx264 -g 30 -bf 2 -c:a aac -video_track_timescale 90000".split(" "),
  ]);
}

/** Writes `frames` into a new packager (whole stream: closed at the end); returns it. */
export async function packageFrames(
  frames: readonly MediaFrame[],
  options: HlsPackagerOptions,
): Promise<HlsPackager> {
  const packager = new HlsPackager(options);
  await ReadableStream.from(frames).pipeTo(packager);
  return packager;
}

/** A media playlist read back: its tags and segments. */
export interface ParsedPlaylist {
  /** Tag name to value (the last one wins), e.g. `EXT-X-TARGETDURATION` → `2`. */
  tags: Map<string, string>;
  /** Listed segments in order. */
  segments: {
    uri: string;
    duration: number;
    discontinuity: boolean;
    map?: string;
    parts: ParsedPart[];
  }[];
  /** Parts listed after the last segment (of the segment being written). */
  pendingParts: ParsedPart[];
  /** The `EXT-X-PRELOAD-HINT` URI. */
  preloadHint?: string;
  /** Whether `#EXT-X-ENDLIST` ends it. */
  ended: boolean;
}

/** One `EXT-X-PART`. */
export interface ParsedPart {
  /** URI. */
  uri: string;
  /** DURATION. */
  duration: number;
  /** INDEPENDENT=YES. */
  independent: boolean;
}

/** Parses a media playlist and checks the rules every playlist must keep. */
export function parsePlaylist(text: string): ParsedPlaylist {
  const lines = text.trimEnd().split("\n");
  assert.equal(lines[0], "#EXTM3U");
  const tags = new Map<string, string>();
  const segments: ParsedPlaylist["segments"] = [];
  let duration = NaN;
  let discontinuity = false;
  let map: string | undefined;
  let parts: ParsedPart[] = [];
  let preloadHint: string | undefined;
  for (const line of lines.slice(1)) {
    if (line.startsWith("#EXTINF:")) duration = parseFloat(line.slice(8));
    else if (line.startsWith("#EXT-X-PART:")) {
      parts.push({
        uri: /URI="([^"]+)"/.exec(line)![1],
        duration: parseFloat(/DURATION=([\d.]+)/.exec(line)![1]),
        independent: line.includes("INDEPENDENT=YES"),
      });
    } else if (line.startsWith("#EXT-X-PRELOAD-HINT:")) {
      assert.match(line, /TYPE=PART/);
      preloadHint = /URI="([^"]+)"/.exec(line)![1];
    } else if (line === "#EXT-X-DISCONTINUITY") discontinuity = true;
    else if (line.startsWith("#EXT-X-MAP:")) map = /URI="([^"]+)"/.exec(line)![1];
    else if (line.startsWith("#")) {
      const colon = line.indexOf(":");
      tags.set(colon < 0 ? line.slice(1) : line.slice(1, colon), line.slice(colon + 1));
    } else {
      assert.ok(Number.isFinite(duration), `EXTINF before ${line}`);
      segments.push({ uri: line, duration, discontinuity, map, parts });
      duration = NaN;
      discontinuity = false;
      parts = [];
    }
  }
  const target = Number(tags.get("EXT-X-TARGETDURATION"));
  assert.ok(Number.isInteger(target) && target > 0, "EXT-X-TARGETDURATION");
  for (const s of segments) {
    assert.ok(Math.round(s.duration) <= target, `EXTINF ${s.duration} > target ${target}`);
  }
  const partTarget = tags.get("EXT-X-PART-INF");
  if (partTarget !== undefined) {
    const max = parseFloat(/PART-TARGET=([\d.]+)/.exec(partTarget)![1]);
    for (const p of [...segments.flatMap((s) => s.parts), ...parts]) {
      assert.ok(p.duration <= max, `part ${p.uri} of ${p.duration} s > PART-TARGET ${max}`);
    }
  }
  return { tags, segments, pendingParts: parts, preloadHint, ended: tags.has("EXT-X-ENDLIST") };
}

/** Packets per stream kind that ffprobe counts in `path` (a playlist or a media file). */
export async function countPackets(path: string): Promise<Record<string, number>> {
  const res = await run("ffprobe", [
    "-v",
    "error",
    "-count_packets",
    "-show_entries",
    "stream=codec_type,nb_read_packets",
    "-of",
    "json",
    path,
  ]);
  assert.equal(res.stderr, "");
  const counts: Record<string, number> = {};
  for (const s of JSON.parse(res.stdout).streams) {
    counts[s.codec_type] = (counts[s.codec_type] ?? 0) + Number(s.nb_read_packets);
  }
  return counts;
}

/** Frames per kind in `frames`. */
export function countFrames(frames: readonly MediaFrame[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const f of frames) counts[f.kind] = (counts[f.kind] ?? 0) + 1;
  return counts;
}

/** The first video packet of a media file, as ffprobe sees it. */
export async function firstVideoPacket(path: string) {
  const streams = await probePackets(path);
  return streams.find((s) => s.codecType === "video")?.packets[0];
}

/** Runs `fn` with a new temp dir, removed afterwards. */
export async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "arcly-hls-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * ffmpeg reads the whole output through the master playlist (or `playlist`), copying and
 * decoding, silently.
 */
export async function assertPlays(dir: string, playlist = "index.m3u8"): Promise<void> {
  const copy = await ffmpeg([
    "-v",
    "warning",
    "-xerror",
    "-i",
    `${dir}/${playlist}`,
    "-c",
    "copy",
    "-f",
    "null",
    "-",
  ]);
  assert.equal(copy.stderr, "");
  assert.equal(copy.code, 0);
  const decode = await decodeCheck(`${dir}/${playlist}`);
  assert.equal(decode.stderr, "");
  assert.equal(decode.code, 0);
}

/**
 * Each run of segments between `EXT-X-DISCONTINUITY` tags of the media playlist plays on its
 * own ({@linkcode assertPlays} of a VOD playlist listing just that run): ffmpeg's HLS reader
 * neither switches codecs nor init segments, as players do at a discontinuity. Returns how
 * many runs there are.
 */
export async function assertSectionsPlay(dir: string): Promise<number> {
  const lines = (await Deno.readTextFile(`${dir}/stream.m3u8`)).split("\n");
  const target = lines.find((l) => l.startsWith("#EXT-X-TARGETDURATION:"))!;
  const sections: string[][] = [[]];
  let map: string | undefined;
  for (const line of lines) {
    if (line === "#EXT-X-DISCONTINUITY") sections.push(map ? [map] : []);
    else if (line.startsWith("#EXT-X-MAP:")) {
      map = line;
      sections.at(-1)!.push(line);
    } else if (line.startsWith("#EXTINF:") || (line !== "" && !line.startsWith("#"))) {
      sections.at(-1)!.push(line);
    }
  }
  for (const [n, body] of sections.entries()) {
    const name = `section${n}.m3u8`;
    const head = ["#EXTM3U", "#EXT-X-VERSION:7", target, "#EXT-X-PLAYLIST-TYPE:VOD"];
    await Deno.writeTextFile(`${dir}/${name}`, [...head, ...body, "#EXT-X-ENDLIST", ""].join("\n"));
    await assertPlays(dir, name);
  }
  return sections.length;
}

/** Every segment starts with a keyframe; TS segments with PAT then PMT; fMP4 ones parse after their init. */
export async function assertSegmentStarts(dir: string, playlist: ParsedPlaylist): Promise<void> {
  for (const s of playlist.segments) {
    let path = `${dir}/${s.uri}`;
    if (s.map) {
      const joined = `${dir}/joined.mp4`;
      const init = await Deno.readFile(`${dir}/${s.map}`);
      const media = await Deno.readFile(path);
      await Deno.writeFile(joined, new Uint8Array([...init, ...media]));
      path = joined;
    } else {
      const ts = await Deno.readFile(path);
      assert.equal(ts[0], 0x47);
      assert.equal(((ts[1] & 0x1f) << 8) | ts[2], 0, `${s.uri}: PAT first`);
      assert.equal(((ts[189] & 0x1f) << 8) | ts[190], 0x1000, `${s.uri}: PMT second`);
    }
    const first = await firstVideoPacket(path);
    assert.ok(first?.keyframe, `${s.uri} starts with a keyframe`);
  }
}

/** The frames of `a`, then those of `b` restarting at time 0 with DISCONTINUITY on its first frame. */
export async function twoEncodings(): Promise<{ a: MediaFrame[]; b: MediaFrame[] }> {
  const a = await mp4Frames(await h264Aac(), 6000);
  const b = await mp4Frames(await smallH264Aac(), 6000);
  const [first, ...rest] = b.frames;
  const flagged = { ...first, flags: first.flags | FrameFlags.DISCONTINUITY };
  return { a: [...a.configs, ...a.frames], b: [...b.configs, flagged, ...rest] };
}
