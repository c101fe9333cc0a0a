/** Helpers of the RTSP pull client's tests: a bounded pull, frame checks, GStreamer's server. */

import assert from "node:assert/strict";
import { FrameFlags, type MediaFrame } from "../../../mod.ts";
import { pullRtsp, type RtspPullOptions } from "../../../ingest/rtsp/mod.ts";
import { assertConfigFirst } from "../../_util/frames.ts";
import { LogLines } from "../../_util/log.ts";
import { checkPulled } from "../../_util/pulled.ts";
import { within } from "../../_util/within.ts";

/** What a bounded pull got. */
export interface Pulled {
  frames: MediaFrame[];
  log: LogLines;
  /** undefined when the pull resolved, else its error. */
  error: Error | undefined;
}

/**
 * Pull `url` and abort after `ms` (or when it ends first); never longer than `ms` + 15 s.
 * A 503 (GStreamer's answer while a new client's pipeline is still prerolling on a loaded
 * machine) is tried again, twice at most.
 */
export async function pullFor(
  url: string,
  ms: number,
  options: Partial<RtspPullOptions> = {},
): Promise<Pulled> {
  for (let attempt = 0;; attempt++) {
    const pulled = await pullOnce(url, ms, options);
    if (attempt === 2 || !/ 503 /.test(String(pulled.error))) return pulled;
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function pullOnce(
  url: string,
  ms: number,
  options: Partial<RtspPullOptions> = {},
): Promise<Pulled> {
  const frames: MediaFrame[] = [];
  const log = new LogLines();
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), ms);
  let error: Error | undefined;
  try {
    await within(
      pullRtsp(new URL(url), {
        onFrame: (frame) => frames.push(frame),
        signal: stop.signal,
        logger: log,
        ...options,
      }),
      ms + 15_000,
      `the pull of ${url}`,
    );
  } catch (e) {
    error = e as Error;
  } finally {
    clearTimeout(timer);
    stop.abort();
  }
  return { frames, log, error };
}

/**
 * The frames follow the bus's contract: CONFIG first per track, a keyframe first among
 * the video, decode times that never go back, the codecs expected.
 */
export function checkFrames(
  frames: readonly MediaFrame[],
  video: string,
  audio?: string,
  log?: LogLines,
): void {
  assertConfigFirst(frames, "pulled frames");
  const media = frames.filter((f) => !(f.flags & FrameFlags.CONFIG));
  const videos = media.filter((f) => f.kind === "video");
  assert.ok(videos.length > 10, `only ${videos.length} video frames`);
  assert.ok(videos.every((f) => f.codec === video && f.track === 0), "video codec and track");
  assert.ok(videos[0].flags & FrameFlags.KEYFRAME, "the first video frame is a keyframe");
  if (audio) {
    const audios = media.filter((f) => f.kind === "audio");
    assert.ok(audios.length > 10, `only ${audios.length} audio frames; ${log?.lines.join("; ")}`);
    assert.ok(audios.every((f) => f.codec === audio && f.track === 1), "audio codec and track");
  }
  for (const track of [0, 1]) {
    const dts = media.filter((f) => f.track === track).map((f) => f.dts);
    for (let i = 1; i < dts.length; i++) {
      assert.ok(dts[i] >= dts[i - 1], `track ${track} DTS goes back at ${i}`);
    }
  }
}

/** Writes the frames as MPEG-TS (`NAME`) and has ffmpeg decode it: no warning, no error. */
export async function assertDecodes(frames: readonly MediaFrame[], name: string): Promise<void> {
  const { decode } = await checkPulled(frames, name.replace(/\.ts$/, ""));
  assert.equal(decode.code, 0, `${name}: ${decode.stderr}`);
  assert.equal(decode.stderr, "", `${name}: ffmpeg warned`);
}

/** GStreamer's RTSP server (tests/ingest/rtsp/_gst_rtsp_server.py, run by Debian's python3 with python3-gi) on a free port. */
export interface GstServer {
  readonly port: number;
  readonly pid: number;
  /** Kill it (SIGKILL) and wait for its end. */
  kill(): Promise<void>;
}

const SCRIPT = new URL("./_gst_rtsp_server.py", import.meta.url).pathname;

/** Start the GStreamer RTSP server with `args`; resolves once it prints its port. */
export async function startGst(args: string[] = []): Promise<GstServer> {
  const child = new Deno.Command("/usr/bin/python3", {
    args: [SCRIPT, "--seconds", "60", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const kill = async () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // exited
    }
    await child.status;
  };
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  try {
    const port = await within(
      (async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`the GStreamer server exited: ${text}`);
          text += value;
          const m = /port (\d+)/.exec(text);
          if (m) return Number(m[1]);
        }
      })(),
      15_000,
      "the GStreamer RTSP server's port",
    );
    void reader.read().then(function drain(r): unknown {
      return r.done ? undefined : reader.read().then(drain);
    }).catch(() => {});
    return { port, pid: child.pid, kill };
  } catch (error) {
    await kill();
    throw error;
  }
}
