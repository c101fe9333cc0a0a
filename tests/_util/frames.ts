/** Synthetic frames for kernel tests. */

import { FrameFlags, type MediaFrame } from "../../mod.ts";

/** A video frame at `pts` (90 kHz), a keyframe when `key`. */
export function videoFrame(pts: number, key = false, size = 5): MediaFrame {
  return {
    track: 0,
    kind: "video",
    codec: "h264",
    pts,
    dts: pts,
    flags: key ? FrameFlags.KEYFRAME : FrameFlags.NONE,
    data: new Uint8Array(size),
  };
}

/** An AAC frame at `pts`. */
export function audioFrame(pts: number, size = 4): MediaFrame {
  return {
    track: 1,
    kind: "audio",
    codec: "aac",
    pts,
    dts: pts,
    flags: FrameFlags.NONE,
    data: new Uint8Array(size),
  };
}

/** A CONFIG frame for `kind`. */
export function configFrame(kind: "video" | "audio"): MediaFrame {
  return {
    track: kind === "video" ? 0 : 1,
    kind,
    codec: kind === "video" ? "h264" : "aac",
    pts: 0,
    dts: 0,
    flags: FrameFlags.CONFIG,
    data: new Uint8Array([1, 2, 3]),
  };
}

/** Read everything left in `stream`, failing after `ms` so a hang fails the test. */
export async function readAll<T>(stream: ReadableStream<T>, ms = 5000): Promise<T[]> {
  const out: T[] = [];
  const reader = stream.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`stream did not end within ${ms} ms`)), ms);
  });
  try {
    for (;;) {
      const { value, done } = await Promise.race([reader.read(), timeout]);
      if (done) return out;
      out.push(value);
    }
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
}
