/**
 * MediaFrames read straight out of an ffmpeg-made MP4 file: ffprobe gives each
 * packet's position, size, times and flags and each stream's extradata (avcC,
 * hvcC, AudioSpecificConfig, OpusHead), so tests do not depend on our demuxers.
 */

import { type CodecId, FrameFlags, type MediaFrame } from "../../../mod.ts";
import { run, to90k } from "../../_util/ffmpeg.ts";

/** The frames of one MP4 file, CONFIG frames first, media in file order. */
export interface Mp4Frames {
  /** One CONFIG frame per stream. */
  configs: MediaFrame[];
  /** Media frames in file order (interleaved as the file is). */
  frames: MediaFrame[];
}

const CODECS: Record<string, CodecId> = { h264: "h264", hevc: "h265", aac: "aac", opus: "opus" };

/** Parses ffprobe's hex dump of extradata (`00000000: 0164 000d ...  .d..`). */
function parseHexDump(dump: string): Uint8Array {
  const bytes: number[] = [];
  for (const line of dump.split("\n")) {
    const m = /^[0-9a-f]{8}: ((?:[0-9a-f]{2,4} ?)+)/.exec(line);
    if (!m) continue;
    for (const word of m[1].trim().split(" ")) {
      for (let i = 0; i < word.length; i += 2) bytes.push(parseInt(word.slice(i, i + 2), 16));
    }
  }
  return new Uint8Array(bytes);
}

/** A CONFIG frame; audio for AAC and Opus, else video. */
export function configFrame(track: number, codec: CodecId, data: Uint8Array): MediaFrame {
  const kind = codec === "aac" || codec === "opus" ? "audio" : "video";
  return { track, kind, codec, pts: 0, dts: 0, flags: FrameFlags.CONFIG, data };
}

/**
 * Reads `path` (an MP4 with one video and/or one audio stream) into frames.
 * Track numbers follow the convention: video 0, audio 1. Timestamps are moved
 * by `shift` 90 kHz ticks.
 */
export async function mp4Frames(path: string, shift = 0): Promise<Mp4Frames> {
  const res = await run("ffprobe", [
    "-v",
    "error",
    "-show_streams",
    "-show_data",
    "-show_entries",
    "packet=stream_index,pts,dts,flags,pos,size",
    "-of",
    "json",
    path,
  ]);
  if (res.code !== 0) throw new Error(`ffprobe failed on ${path}:\n${res.stderr}`);
  // deno-lint-ignore no-explicit-any
  const json = JSON.parse(res.stdout) as { streams: any[]; packets: any[] };
  const file = await Deno.readFile(path);
  const streams = new Map<
    number,
    { track: number; kind: "video" | "audio"; codec: CodecId; tb: [number, number] }
  >();
  const configs: MediaFrame[] = [];
  for (const s of json.streams) {
    const codec = CODECS[s.codec_name];
    if (!codec) throw new Error(`unexpected codec ${s.codec_name}`);
    const kind = s.codec_type === "video" ? "video" : "audio";
    const track = kind === "video" ? 0 : 1;
    const [num, den] = String(s.time_base).split("/").map(Number);
    streams.set(s.index, { track, kind, codec, tb: [num, den] });
    configs.push(configFrame(track, codec, parseHexDump(String(s.extradata))));
  }
  const frames: MediaFrame[] = json.packets.map((p) => {
    const s = streams.get(p.stream_index)!;
    const pos = Number(p.pos);
    const flags = String(p.flags).includes("K") ? FrameFlags.KEYFRAME : FrameFlags.NONE;
    return {
      track: s.track,
      kind: s.kind,
      codec: s.codec,
      pts: to90k(Number(p.pts), s.tb) + shift,
      dts: to90k(Number(p.dts), s.tb) + shift,
      flags,
      data: file.subarray(pos, pos + Number(p.size)),
    };
  });
  return { configs, frames };
}
