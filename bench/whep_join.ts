/**
 * Joining a WHEP stream mid-GOP: the GOP replay sent in one burst against a paced catch-up,
 * as headless Chromium's getStats() sees the first seconds. ffmpeg publishes a 640x360
 * 30 fps H.264 + AAC test pattern with 2 s GOPs over RTMP; players join at random points of
 * the GOP through the player page.
 *
 *   deno run -A bench/whep_join.ts [--joins 4] [--speeds 0,1.5] [--seconds 5]
 *
 * Per catch-up speed (0 = burst) it prints the median time to the first decoded frame
 * (from the page's peer connection), and the mean frames dropped, freezes and frozen time
 * over the first `seconds`.
 */

import { parseArgs } from "node:util";
import { Registry } from "../mod.ts";
import { serveRtmp } from "../ingest/rtmp/mod.ts";
import { serveHttp } from "../ingest/http/server.ts";
import { WebRtcServer } from "../ingest/webrtc/mod.ts";
import { openInChromium, resultCollector } from "../tests/_util/browser.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    joins: { type: "string", default: "4" },
    speeds: { type: "string", default: "0,1.5" },
    seconds: { type: "string", default: "5" },
  },
});
const JOINS = Number(args.values.joins);
const SPEEDS = args.values.speeds.split(",").map(Number);
const SECONDS = Number(args.values.seconds);

/** Samples the player page's peer connection every 100 ms and posts what it saw. */
const PAGE = `<!doctype html><iframe id="p" src="/live/cam/" width="660" height="380"></iframe>
<script>
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
(async () => {
  const frame = document.getElementById("p");
  let pc;
  for (let i = 0; i < 300 && !(pc = frame.contentWindow?.arclyPeer); i++) await sleep(20);
  const t0 = performance.now();
  let first = -1, video = {};
  while (performance.now() - t0 < ${SECONDS} * 1000) {
    await sleep(100);
    (await pc.getStats()).forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "video") video = s; });
    if (first < 0 && video.framesDecoded > 0) first = performance.now() - t0;
  }
  await fetch("/result", { method: "POST", body: JSON.stringify({
    first, dropped: video.framesDropped ?? 0, freezes: video.freezeCount ?? 0,
    frozen: video.totalFreezesDuration ?? 0, decoded: video.framesDecoded ?? 0,
  }) });
})();
</script>`;

interface Sample {
  first: number;
  dropped: number;
  freezes: number;
  frozen: number;
  decoded: number;
}

const registry = new Registry();
const rtmp = serveRtmp({ registry, hostname: "127.0.0.1", port: 0 });
const publisher = new Deno.Command("ffmpeg", {
  args: [
    ...["-hide_banner", "-nostdin", "-v", "error", "-re"],
    ...["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"],
    ...["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"],
    ...["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-bf", "0", "-g", "60"],
    ...["-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv"],
    `rtmp://127.0.0.1:${rtmp.addr.port}/live/cam`,
  ],
  stdin: "null",
  stdout: "null",
  stderr: "null",
}).spawn();
await new Promise((r) => setTimeout(r, 3000));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
console.log(`${JOINS} joins per speed, ${SECONDS} s each; 640x360 30 fps, 2 s GOP`);
console.log("catch-up | first frame ms (median) | frames dropped | freezes | frozen s | decoded");
try {
  for (const speed of SPEEDS) {
    const webrtc = new WebRtcServer({ registry, catchUpSpeed: speed, hosts: ["127.0.0.1"] });
    const samples: Sample[] = [];
    for (let j = 0; j < JOINS; j++) {
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 1700)); // a random GOP point
      const collector = resultCollector(60_000);
      const http = serveHttp({
        routes: [
          collector.route,
          (_r, url) =>
            url.pathname === "/bench.html"
              ? new Response(PAGE, { headers: { "content-type": "text/html" } })
              : undefined,
          webrtc.route,
        ],
        hostname: "127.0.0.1",
        port: 0,
      });
      const browser = await openInChromium(`http://127.0.0.1:${http.addr.port}/bench.html`);
      try {
        samples.push(await collector.result as Sample);
      } finally {
        await browser.close();
        await http.close();
      }
    }
    await webrtc.close();
    console.log(
      `${String(speed || "burst").padEnd(8)} | ${
        median(samples.map((s) => s.first)).toFixed(0).padStart(23)
      } | ${mean(samples.map((s) => s.dropped)).toFixed(1).padStart(14)} | ${
        mean(samples.map((s) => s.freezes)).toFixed(1).padStart(7)
      } | ${mean(samples.map((s) => s.frozen)).toFixed(2).padStart(8)} | ${
        mean(samples.map((s) => s.decoded)).toFixed(0).padStart(7)
      }`,
    );
  }
} finally {
  publisher.kill("SIGKILL");
  await publisher.status;
  await rtmp.close();
  registry.closeAll();
}
