/**
 * Stream metadata for RTMP: what a publisher's `onMetaData` says about a stream, and
 * the `onMetaData` object sent to players. (What decoder configs say is read by the
 * registry's `describeConfig`.)
 *
 * @module
 */

import type { StreamHandle } from "../../mod.ts";
import type { Amf0Object, Amf0Value } from "../../media/flv/amf0.ts";

/** FLV/E-RTMP codec ids for `onMetaData` (FourCC values for the enhanced codecs). */
const VIDEO_CODEC_IDS: Record<string, number> = {
  h264: 7,
  h265: fourCc("hvc1"),
  av1: fourCc("av01"),
};
const AUDIO_CODEC_IDS: Record<string, number> = { aac: 10, mp3: 2, opus: fourCc("Opus") };

function fourCc(text: string): number {
  return (text.charCodeAt(0) << 24 >>> 0) + (text.charCodeAt(1) << 16) +
    (text.charCodeAt(2) << 8) + text.charCodeAt(3);
}

/** Take picture size and frame rate from a publisher's `onMetaData` object. */
export function readStreamMetadata(handle: StreamHandle, value: Amf0Value): void {
  const meta = value instanceof Map ? Object.fromEntries(value) : value;
  if (typeof meta !== "object" || meta === null || Array.isArray(meta) || meta instanceof Date) {
    return;
  }
  const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) && v > 0 ? v : 0);
  handle.updateMetadata((m) => {
    m.width = num(meta.width) || m.width;
    m.height = num(meta.height) || m.height;
    m.fps = num(meta.framerate) || num(meta.videoframerate) || m.fps;
  });
}

/** The `onMetaData` object a player gets before the first frame. */
export function metadataFromStream(handle: StreamHandle): Amf0Object {
  const m = handle.metadata();
  const { video, audio } = handle.cachedConfigs();
  const out: Amf0Object = { duration: 0 };
  if (m.width) out.width = m.width;
  if (m.height) out.height = m.height;
  if (m.fps) out.framerate = m.fps;
  if (video && VIDEO_CODEC_IDS[video.codec]) out.videocodecid = VIDEO_CODEC_IDS[video.codec];
  if (audio && AUDIO_CODEC_IDS[audio.codec]) out.audiocodecid = AUDIO_CODEC_IDS[audio.codec];
  out.encoder = "arcly-stream";
  return out;
}
