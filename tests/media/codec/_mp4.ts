/** Read frames out of an ffmpeg-made MP4 with ffprobe's packet positions (no demuxer needed). */

import { FrameFlags, type MediaFrame } from "../../../bus/frame.ts";
import { buildAudioSpecificConfig } from "../../../media/codec/aac.ts";
import { probePackets, type ProbeStream, to90k } from "../../_util/ffmpeg.ts";

/** The body of the first box of `type` (e.g. `hvcC`) found by scanning `data`. */
export function findBox(data: Uint8Array, type: string): Uint8Array | undefined {
  const t = [...type].map((c) => c.charCodeAt(0));
  for (let i = 4; i + 4 <= data.length; i++) {
    if (data[i] === t[0] && data[i + 1] === t[1] && data[i + 2] === t[2] && data[i + 3] === t[3]) {
      const size = new DataView(data.buffer, data.byteOffset).getUint32(i - 4);
      if (size >= 8 && i - 4 + size <= data.length) return data.subarray(i + 4, i - 4 + size);
    }
  }
  return undefined;
}

/**
 * CONFIG frames then media frames of an MP4 whose samples ffprobe locates,
 * sorted by dts; video is track 0, audio track 1. Timestamps are shifted so
 * that the first dts is `start` (90 kHz).
 */
export async function mp4Frames(
  path: string,
  start = 0,
): Promise<{ frames: MediaFrame[]; streams: ProbeStream[] }> {
  const file = await Deno.readFile(path);
  const streams = await probePackets(path);
  const configs: MediaFrame[] = [];
  const media: MediaFrame[] = [];
  for (const s of streams) {
    const video = s.codecType === "video";
    const codec = ({ h264: "h264", hevc: "h265", aac: "aac" } as const)[s.codecName as "h264"];
    if (!codec) throw new Error(`mp4Frames: unsupported codec ${s.codecName}`);
    const config = codec === "h264"
      ? findBox(file, "avcC")
      : codec === "h265"
      ? findBox(file, "hvcC")
      : buildAudioSpecificConfig({
        objectType: 2,
        sampleRate: Number(s.info.sample_rate),
        channelConfiguration: Number(s.info.channels),
      });
    if (!config) throw new Error(`mp4Frames: no configuration for ${codec}`);
    const base = { track: video ? 0 : 1, kind: video ? "video" : "audio", codec } as const;
    configs.push({ ...base, pts: 0, dts: 0, flags: FrameFlags.CONFIG, data: config });
    for (const p of s.packets) {
      media.push({
        ...base,
        pts: to90k(p.pts!, s.timeBase),
        dts: to90k(p.dts!, s.timeBase),
        flags: p.keyframe ? FrameFlags.KEYFRAME : FrameFlags.NONE,
        data: file.subarray(p.pos!, p.pos! + p.size),
      });
    }
  }
  media.sort((a, b) => a.dts - b.dts);
  const shift = start - Math.min(...media.map((f) => f.dts));
  const frames = [...configs, ...media].map((f) =>
    f.flags & FrameFlags.CONFIG
      ? { ...f, pts: start, dts: start }
      : { ...f, pts: f.pts + shift, dts: f.dts + shift }
  );
  return { frames, streams };
}
