/** Parses MP4 bytes with mp4box.js (GPAC's parser), an independent reader of what we write. */

import { createFile } from "mp4box";

/** One track as mp4box.js reports it. */
export interface Mp4boxTrack {
  /** track_ID. */
  id: number;
  /** RFC 6381 codec string computed by mp4box.js from the sample entry. */
  codec: string;
  /** Media timescale. */
  timescale: number;
  /** Samples mp4box.js found in the fragments. */
  nbSamples: number;
  /** Video width and height, when a video track. */
  video?: { width: number; height: number };
  /** Audio sample rate and channel count, when an audio track. */
  audio?: { sample_rate: number; channel_count: number };
}

/** One sample as mp4box.js extracts it. */
export interface Mp4boxSample {
  /** Decode time in the track timescale. */
  dts: number;
  /** Composition time in the track timescale. */
  cts: number;
  /** Duration in the track timescale. */
  duration: number;
  /** Sync sample flag. */
  is_sync: boolean;
  /** Size in bytes. */
  size: number;
  /** Payload. */
  data: Uint8Array;
}

/** Parses a whole file (init segment plus fragments) and extracts every sample. */
export function parseMp4(bytes: Uint8Array): {
  tracks: Mp4boxTrack[];
  samples: Map<number, Mp4boxSample[]>;
} {
  const file = createFile();
  let tracks: Mp4boxTrack[] = [];
  const samples = new Map<number, Mp4boxSample[]>();
  let error: unknown;
  file.onError = (e: unknown) => error = e;
  // deno-lint-ignore no-explicit-any
  file.onReady = (info: any) => {
    tracks = info.tracks.map((t: Record<string, unknown>) => ({
      id: t.id,
      codec: t.codec,
      timescale: t.timescale,
      nbSamples: t.nb_samples,
      video: t.video,
      audio: t.audio,
    }));
    for (const t of tracks) {
      samples.set(t.id, []);
      file.setExtractionOptions(t.id, null, { nbSamples: 1_000_000 });
    }
    file.start();
  };
  // deno-lint-ignore no-explicit-any
  file.onSamples = (id: number, _user: unknown, list: any[]) => {
    for (const s of list) {
      samples.get(id)!.push({
        dts: s.dts,
        cts: s.cts,
        duration: s.duration,
        is_sync: s.is_sync,
        size: s.size,
        data: new Uint8Array(s.data),
      });
    }
  };
  const buffer = bytes.slice().buffer as ArrayBuffer & { fileStart: number };
  buffer.fileStart = 0;
  // deno-lint-ignore no-explicit-any
  file.appendBuffer(buffer as any);
  file.flush();
  if (error !== undefined) throw new Error(`mp4box: ${error}`);
  return { tracks, samples };
}
