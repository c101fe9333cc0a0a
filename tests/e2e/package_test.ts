/**
 * `cli.ts package` end to end: ffmpeg makes the input, the CLI packages it, ffmpeg,
 * ffprobe and hls.js in headless Chromium judge the output.
 */

import assert from "node:assert/strict";
import {
  decodeCheck,
  ffmpeg,
  makeFixture,
  probePackets,
  run,
  sine,
  testsrc,
} from "../_util/ffmpeg.ts";
import { npmFile, openInChromium, resultCollector } from "../_util/browser.ts";
import { testsWith } from "../_util/tools.ts";

const test = await testsWith({
  ffmpeg: ["ffmpeg", "ffprobe"],
  x265: ["ffmpeg", "ffprobe", "ffmpeg:libx265"],
  chromium: ["chromium", "ffmpeg", "ffprobe"],
});

const CLI = new URL("../../cli.ts", import.meta.url).pathname;

function h264Flv(): Promise<string> {
  return makeFixture("package-h264-aac.flv", [
    ...testsrc({ duration: 6, rate: 30 }),
    ...sine({ duration: 6, sampleRate: 44100 }),
    ...["-c:v", "libx264", "-bf", "2", "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac"],
    ...["-shortest", "-f", "flv"],
  ]);
}

function h265Ts(): Promise<string> {
  return makeFixture("package-h265-aac.ts", [
    ...testsrc({ duration: 6, rate: 25 }),
    ...sine({ duration: 6 }),
    ...["-c:v", "libx265", "-x265-params", "bframes=2:keyint=25:log-level=error"],
    ...["-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", "-f", "mpegts"],
  ]);
}

/** Run the CLI; `stdin` is a file piped in, for the `-` input. */
async function packageCli(args: string[], stdin?: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "package", ...args],
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin) {
    const file = await Deno.open(stdin);
    await file.readable.pipeTo(child.stdin);
  }
  const out = await child.output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

/** Packets per stream type, as ffprobe counts them. */
async function packetCounts(path: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const stream of await probePackets(path)) {
    counts[stream.codecType] = (counts[stream.codecType] ?? 0) + stream.packets.length;
  }
  return counts;
}

async function segmentNames(dir: string): Promise<string[]> {
  const playlist = await Deno.readTextFile(`${dir}/stream.m3u8`);
  return playlist.split("\n").filter((line) => line && !line.startsWith("#"));
}

/** Every segment starts with a video keyframe; TS segments start with PAT then PMT. */
async function checkSegments(dir: string, segmentType: "ts" | "fmp4") {
  const names = await segmentNames(dir);
  assert.ok(names.length >= 3, `expected several segments, got ${names.join(", ")}`);
  const playlist = await Deno.readTextFile(`${dir}/stream.m3u8`);
  const init = /#EXT-X-MAP:URI="([^"]+)"/.exec(playlist)?.[1];
  for (const name of names) {
    let path = `${dir}/${name}`;
    const bytes = await Deno.readFile(path);
    if (segmentType === "ts") {
      const pid = (at: number) => ((bytes[at + 1] & 0x1f) << 8) | bytes[at + 2];
      assert.equal(bytes[0], 0x47);
      assert.equal(pid(0), 0, `${name} starts with the PAT`);
      let at = 4 + ((bytes[3] & 0x20) ? 1 + bytes[4] : 0);
      at += 1 + bytes[at]; // pointer field
      const pmtPid = ((bytes[at + 10] & 0x1f) << 8) | bytes[at + 11]; // first program's PID
      assert.equal(pid(188), pmtPid, `${name} has the PMT second`);
    } else {
      assert.ok(init, "fMP4 playlists carry EXT-X-MAP");
      path = `${dir}/${name}.whole.mp4`;
      await Deno.writeFile(
        path,
        new Uint8Array([...await Deno.readFile(`${dir}/${init}`), ...bytes]),
      );
    }
    const video = (await probePackets(path)).find((s) => s.codecType === "video");
    assert.ok(video && video.packets.length > 0, `${name} has video`);
    assert.ok(video.packets[0].keyframe, `${name} starts with a keyframe`);
  }
}

for (const segmentType of ["ts", "fmp4"] as const) {
  test.ffmpeg(`package H.264+AAC FLV (B-frames) into ${segmentType} HLS that ffmpeg reads whole`, async () => {
    const input = await h264Flv();
    const out = await Deno.makeTempDir({ prefix: "arcly-package-" });
    try {
      const result = await packageCli([input, "--out", out, "--segment-type", segmentType]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stderr, "", "quiet when stderr is not a terminal");
      const decode = await decodeCheck(`${out}/index.m3u8`);
      assert.equal(decode.code, 0, decode.stderr);
      assert.equal(decode.stderr, "");
      const copy = await ffmpeg([
        "-v",
        "warning",
        "-xerror",
        "-i",
        `${out}/index.m3u8`,
        "-c",
        "copy",
        "-f",
        "null",
        "-",
      ]);
      assert.equal(copy.code, 0, copy.stderr);
      assert.deepEqual(await packetCounts(`${out}/index.m3u8`), await packetCounts(input));
      await checkSegments(out, segmentType);
      const playlist = await Deno.readTextFile(`${out}/stream.m3u8`);
      assert.match(playlist, /#EXT-X-PLAYLIST-TYPE:VOD/);
      assert.match(playlist, /#EXT-X-ENDLIST/);
      const master = await Deno.readTextFile(`${out}/index.m3u8`);
      assert.match(master, /CODECS="avc1\.[0-9a-f]{6},mp4a\.40\.2"/);
      assert.match(master, /RESOLUTION=320x240/);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  });
}

test.x265("package H.265+AAC MPEG-TS from stdin into ts and fmp4 HLS", async () => {
  const input = await h265Ts();
  for (const segmentType of ["ts", "fmp4"]) {
    const out = await Deno.makeTempDir({ prefix: "arcly-package-" });
    try {
      const result = await packageCli(["-", "--out", out, "--segment-type", segmentType], input);
      assert.equal(result.code, 0, result.stderr);
      const decode = await decodeCheck(`${out}/index.m3u8`);
      assert.equal(decode.code, 0, decode.stderr);
      assert.equal(decode.stderr, "");
      assert.deepEqual(await packetCounts(`${out}/index.m3u8`), await packetCounts(input));
      await checkSegments(out, segmentType as "ts" | "fmp4");
      assert.match(
        await Deno.readTextFile(`${out}/index.m3u8`),
        /CODECS="hvc1\.[^"]+,mp4a\.40\.2"/,
      );
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  }
});

Deno.test("package: input that is not media exits 1 with a one-line reason", async () => {
  const junk = await Deno.makeTempFile();
  await Deno.writeFile(
    junk,
    crypto.getRandomValues(new Uint8Array(4096)).map((b) => b === 0x47 || b === 0x46 ? 0 : b),
  );
  const out = await Deno.makeTempDir();
  try {
    const result = await packageCli([junk, "--out", out]);
    assert.equal(result.code, 1);
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    assert.match(result.stderr, /neither FLV nor MPEG-TS/);
    const missing = await packageCli([`${junk}.missing`, "--out", out]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read/);
    const usage = await packageCli([junk]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--out DIR is required/);
  } finally {
    await Deno.remove(junk);
    await Deno.remove(out, { recursive: true });
  }
});

test.ffmpeg("package: truncated input keeps the complete segments, closes the playlist, exits non-zero", async () => {
  const input = await h264Flv();
  const whole = await Deno.readFile(input);
  const cut = await Deno.makeTempFile({ suffix: ".flv" });
  await Deno.writeFile(cut, whole.subarray(0, Math.floor(whole.byteLength * 0.8)));
  const out = await Deno.makeTempDir();
  try {
    const result = await packageCli([cut, "--out", out]);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /warning: input ended early/);
    const playlist = await Deno.readTextFile(`${out}/stream.m3u8`);
    assert.match(playlist, /#EXT-X-ENDLIST/);
    const decode = await decodeCheck(`${out}/index.m3u8`);
    assert.equal(decode.code, 0, decode.stderr);
    assert.ok((await segmentNames(out)).length >= 2);
  } finally {
    await Deno.remove(cut);
    await Deno.remove(out, { recursive: true });
  }
});

const HLS_PAGE = `<!doctype html><video id="v" muted></video>
<script src="/hls.min.js"></script>
<script>
const video = document.getElementById("v");
const hls = new Hls({ maxBufferLength: 600, maxMaxBufferLength: 600 });
let total = 0, buffered = 0, sent = false;
const errors = [];
const report = () => {
  if (sent) return;
  sent = true;
  const end = video.buffered.length ? video.buffered.end(video.buffered.length - 1) : 0;
  fetch("/result", { method: "POST", body: JSON.stringify({ total, buffered, errors, end }) });
};
hls.on(Hls.Events.LEVEL_LOADED, (_e, data) => { total = data.details.fragments.length; });
hls.on(Hls.Events.FRAG_BUFFERED, () => { if (++buffered === total) report(); });
hls.on(Hls.Events.ERROR, (_e, data) => {
  errors.push(data.type + ":" + data.details + (data.fatal ? ":fatal" : ""));
  if (data.fatal) report();
});
hls.loadSource("/out/index.m3u8");
hls.attachMedia(video);
</script>`;

for (const segmentType of ["ts", "fmp4"] as const) {
  test.chromium(`hls.js in Chromium buffers every ${segmentType} fragment without an error`, async () => {
    const input = await h264Flv();
    const out = await Deno.makeTempDir({ prefix: "arcly-hlsjs-" });
    const result = await packageCli([input, "--out", out, "--segment-type", segmentType]);
    assert.equal(result.code, 0, result.stderr);
    const hlsJs = await npmFile("hls.js@1.7.4", "dist/hls.min.js");
    const collector = resultCollector(60_000);
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      async (request) => {
        const url = new URL(request.url);
        const posted = await collector.route(request, url);
        if (posted) return posted;
        if (url.pathname === "/") {
          return new Response(HLS_PAGE, { headers: { "content-type": "text/html" } });
        }
        if (url.pathname === "/hls.min.js") {
          return new Response(hlsJs, { headers: { "content-type": "text/javascript" } });
        }
        const name = url.pathname.slice("/out/".length);
        if (!url.pathname.startsWith("/out/") || !/^[\w.-]+$/.test(name)) {
          return new Response("not found", { status: 404 });
        }
        try {
          return new Response(await Deno.readFile(`${out}/${name}`));
        } catch {
          return new Response("not found", { status: 404 });
        }
      },
    );
    const browser = await openInChromium(`http://127.0.0.1:${server.addr.port}/`);
    try {
      const report = await collector.result as {
        total: number;
        buffered: number;
        errors: string[];
        end: number;
      };
      assert.deepEqual(report.errors, []);
      assert.equal(report.total, (await segmentNames(out)).length);
      assert.equal(report.buffered, report.total);
      assert.ok(report.end > 5, `buffered up to ${report.end} s of a 6 s input`);
    } finally {
      await browser.close();
      await server.shutdown();
      await Deno.remove(out, { recursive: true });
    }
  });
}

Deno.test("package: --help lists the command and bad flags are usage errors", async () => {
  for (const args of [["--help"], ["package", "--help"], ["serve", "-h"]]) {
    const help = await run(Deno.execPath(), ["run", "-A", CLI, ...args]);
    assert.equal(help.code, 0, `${args.join(" ")}: ${help.stderr}`);
    assert.equal(help.stderr, "", args.join(" "));
    assert.match(help.stdout, /package \[INPUT \| -\] --out DIR/);
    assert.match(help.stdout, /--target-duration SECONDS/);
  }
  const bad = await packageCli(["--out", "/tmp/x", "--segment-type", "mkv"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--segment-type takes ts or fmp4/);
});
