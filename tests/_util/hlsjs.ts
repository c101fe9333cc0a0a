/**
 * hls.js in headless Chromium: a page that loads an HLS stream in Low-Latency mode and
 * reports what it buffered, for the packager's tests and the server's end-to-end tests.
 */

import { npmFile, openInChromium, resultCollector } from "./browser.ts";

/**
 * The page: `?src=URL` is the playlist, `&play` plays the video (else hls.js only buffers),
 * `&seconds=S` ends the watch once S seconds are buffered (else at the end of a finished
 * playlist).
 */
const PAGE = `<!doctype html><video id="v" muted></video>
<script src="/hls.min.js"></script>
<script>
const params = new URLSearchParams(location.search);
const video = document.getElementById("v");
const hls = new Hls({ lowLatencyMode: true, maxBufferLength: 600, maxMaxBufferLength: 600 });
const errors = [];
let parts = 0, fragments = 0, blockingReloads = false, sent = false;
const codecs = {};
const buffered = () => {
  const ranges = [];
  for (let i = 0; i < video.buffered.length; i++) {
    ranges.push([video.buffered.start(i), video.buffered.end(i)]);
  }
  return ranges;
};
const report = () => {
  if (sent) return;
  sent = true;
  const body = { errors, parts, fragments, blockingReloads, codecs, ranges: buffered() };
  fetch("/result", { method: "POST", body: JSON.stringify(body) });
};
hls.on(Hls.Events.FRAG_BUFFERED, (_e, data) => { if (data.part) parts++; else fragments++; });
hls.on(Hls.Events.BUFFER_CODECS, (_e, data) => {
  for (const [kind, track] of Object.entries(data)) codecs[kind] = track.codec ?? "";
});
hls.on(Hls.Events.LEVEL_LOADED, (_e, data) => { if (data.details.canBlockReload) blockingReloads = true; });
setInterval(() => {
  const details = hls.levels[0]?.details;
  const last = details?.fragments.at(-1);
  const ranges = buffered();
  const end = ranges.length ? ranges.at(-1)[1] : 0;
  const seconds = Number(params.get("seconds") ?? Infinity);
  if (ranges.length && end - ranges[0][0] >= seconds) report();
  // a finished playlist: done when the buffer reaches the end of its last segment
  if (details && !details.live && last && end >= last.start + last.duration - 0.3) report();
}, 250);
hls.on(Hls.Events.ERROR, (_e, data) => {
  errors.push(data.type + ":" + data.details + (data.fatal ? ":fatal" : ""));
  if (data.fatal) report();
});
setTimeout(() => { errors.push("timeout: not buffered enough in 30 s"); report(); }, 30000);
hls.loadSource(params.get("src"));
hls.attachMedia(video);
if (params.has("play")) video.play();
</script>`;

/** What the page saw. */
export interface HlsJsReport {
  /** hls.js errors, `type:details[:fatal]`. */
  errors: string[];
  /** Partial segments buffered. */
  parts: number;
  /** Whole segments buffered. */
  fragments: number;
  /** Whether a loaded media playlist declared blocking reloads (hls.js then sends them). */
  blockingReloads: boolean;
  /** The codec of each source buffer hls.js made (`audio`, `video`), e.g. `mp4a.40.2`. */
  codecs: Record<string, string>;
  /** The video element's buffered ranges in seconds. */
  ranges: [number, number][];
}

/** Non-fatal events of a playing video catching up with its buffer, not stream faults. */
export const PLAYBACK_EVENT = /^mediaError:buffer(StalledError|NudgeOnStall|SeekOverHole)$/;

/** Options for {@linkcode watchWithHlsJs}. */
export interface WatchOptions {
  /** Whether the page plays the video (else hls.js only buffers). */
  playback?: boolean;
  /** End the watch once this many seconds are buffered (else at the playlist's end). */
  seconds?: number;
  /** Answers the page's other requests, e.g. a stream served from the page's own origin. */
  route?: (request: Request, url: URL) => Promise<Response | undefined>;
  /** Runs while the page watches, e.g. writing the stream. */
  run?: () => Promise<void>;
  /** More Chromium flags, e.g. `--ignore-certificate-errors` for a test's own HTTPS. */
  chromiumFlags?: string[];
}

/**
 * Opens the page in Chromium on `src` (absolute, or a path `route` answers) and resolves
 * with its report once it is done.
 */
export async function watchWithHlsJs(
  src: string,
  options: WatchOptions = {},
): Promise<HlsJsReport> {
  const { route = () => Promise.resolve(undefined), run = () => Promise.resolve() } = options;
  const hlsJs = await npmFile("hls.js@1.7.4", "dist/hls.min.js");
  const collector = resultCollector(45_000);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    const answer = await collector.route(req, url) ?? await route(req, url);
    if (answer) return answer;
    if (url.pathname === "/") {
      return new Response(PAGE, { headers: { "content-type": "text/html" } });
    }
    if (url.pathname === "/hls.min.js") return new Response(hlsJs);
    return new Response("not found", { status: 404 });
  });
  const query = new URLSearchParams({ src });
  if (options.playback) query.set("play", "");
  if (options.seconds !== undefined) query.set("seconds", String(options.seconds));
  const browser = await openInChromium(
    `http://127.0.0.1:${server.addr.port}/?${query}`,
    options.chromiumFlags,
  );
  try {
    await run();
    return await collector.result as HlsJsReport;
  } finally {
    await browser.close();
    await server.shutdown();
  }
}
