/** Helpers of the LiveHls tests: a published stream packaged by a LiveHls, asked directly. */

import assert from "node:assert/strict";
import { type MediaFrame, Registry } from "../../../mod.ts";
import { LiveHls, type LiveHlsOptions } from "../../../ingest/http/mod.ts";
import { mp4Frames } from "../../media/fmp4/_frames.ts";
import { h264Aac, parsePlaylist } from "../../media/hls/_hls.ts";
import { waitFor } from "../../_util/serve.ts";
import { canRun } from "../../_util/tools.ts";

/** ffmpeg-made H.264 + AAC frames; none when the tests are skipped for want of ffmpeg. */
export const { configs, frames } = await canRun("ffmpeg", "ffprobe")
  ? await mp4Frames(await h264Aac())
  : { configs: [] as MediaFrame[], frames: [] as MediaFrame[] };

/** The connection info a route is called with. */
export const INFO = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
  completed: Promise.resolve(),
} as unknown as Deno.ServeHandlerInfo<Deno.NetAddr>;

/**
 * A registry whose `live/ll` is packaged by a LiveHls with `options` (default LL-HLS:
 * fMP4, 1 s segments, 0.25 s parts) and published to, frames by media time.
 */
export async function setup(options: Partial<LiveHlsOptions> = {}) {
  const registry = new Registry({ observer: { onPublish: (key) => hls.start(key) } });
  const hls = new LiveHls({
    segmentType: "fmp4",
    targetDuration: 1,
    partDuration: 0.25,
    ...options,
    registry,
  });
  let handle = registry.startPublish("live", "ll", { protocol: "test" });
  let next = 0;
  /** Start publishing (again): once the packager has subscribed, the configs. */
  const publish = async () => {
    if (handle.closed) handle = registry.startPublish("live", "ll", { protocol: "test" });
    // the packager subscribes once it is set up: publish from then on, as a live source would
    await waitFor("the packager", () => handle.subscriberCount > 0 || undefined);
    for (const config of configs) handle.publish(config);
    next = 0;
  };
  await publish();
  /** Publish the frames up to `seconds` of media. */
  const publishUntil = (seconds: number) => {
    const limit = frames[0].dts + seconds * 90_000;
    while (next < frames.length && frames[next].dts < limit) handle.publish(frames[next++]);
  };
  const get = async (path: string, init: RequestInit = {}) => {
    const url = `http://127.0.0.1/live/ll/${path}`;
    const response = await hls.route(new Request(url, init), new URL(url), INFO);
    assert.ok(response, `an answer for ${path}`);
    return response;
  };
  const playlist = () =>
    waitFor("the media playlist", async () => {
      // The packager's pipe runs on microtasks: after one macrotask it has taken every
      // frame published so far (the first request may have waited for the first segment).
      await new Promise((resolve) => setTimeout(resolve, 0));
      const response = await get("stream.m3u8");
      return response.status === 200 ? parsePlaylist(await response.text()) : undefined;
    });
  const close = async () => {
    registry.endPublish(handle);
    await hls.close();
  };
  return {
    hls,
    registry,
    get handle() {
      return handle;
    },
    publish,
    publishUntil,
    get,
    playlist,
    close,
  };
}

/** A stream of {@linkcode setup}. */
export type Stream = Awaited<ReturnType<typeof setup>>;
