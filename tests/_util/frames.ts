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

/**
 * Asserts the kernel's ordering contract on what subscribers got: every media frame comes
 * after a CONFIG frame of its track with its codec (MP3 needs none). Returns how many media
 * frames there were.
 */
export function assertConfigFirst(frames: readonly MediaFrame[], what = "frames"): number {
  const configured = new Map<number, string>();
  let media = 0;
  for (const [i, f] of frames.entries()) {
    if (f.flags & FrameFlags.CONFIG) {
      configured.set(f.track, f.codec);
      continue;
    }
    media++;
    if (f.codec === "mp3") continue;
    if (configured.get(f.track) !== f.codec) {
      throw new Error(
        `${what}: media frame ${i} (track ${f.track}, ${f.kind} ${f.codec}) before its CONFIG frame`,
      );
    }
  }
  return media;
}
