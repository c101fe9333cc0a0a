/**
 * The origin/edge cluster with real components: `redis-server` on a free port, node A as a
 * child `cli.ts serve` (so that it can be killed), nodes B and C as `serve()` in this
 * process, ffmpeg as publisher and players. ffmpeg publishes to A; B and C play it over RTMP,
 * HLS and SRT through one edge copy each (pulled from A over SRT), every recording starting
 * on a keyframe and decoding cleanly; a second publish of the key on C is refused; A killed,
 * B's and C's players end cleanly, the key can be published on C and B pulls it from there
 * over RTMP; Redis down, C's stream goes on and C says so once.
 */

import assert from "node:assert/strict";
import { serve, type Server, type ServerConfig } from "../../server/mod.ts";
import { assertPlaysAv, type Finished, Procs, publishLive } from "../_util/ffmpeg.ts";
import { LogLines } from "../_util/log.ts";
import { openInChromium, resultCollector } from "../_util/browser.ts";
import { serveHttp } from "../../ingest/http/server.ts";
import { freeTcpPort, freeUdpPort } from "../_util/ports.ts";
import { startRedis } from "../_util/redis.ts";
import { type ServeProcess, startServe, waitFor } from "../_util/serve.ts";
import { testsWith } from "../_util/tools.ts";

const test = await testsWith({ cluster: ["redis-server", "ffmpeg", "ffprobe", "chromium"] });

/** Claims live this long unless refreshed: short, so that A's death shows within seconds. */
const TTL_MS = 1500;

/** The longest any one client may run. */
const LIMIT_MS = 60_000;

/** Where a node listens. */
interface Ports {
  rtmp: number;
  srt: number;
  http: number;
}

async function freePorts(): Promise<Ports> {
  return { rtmp: freeTcpPort(), srt: await freeUdpPort(), http: freeTcpPort() };
}

/** A node's config: its listeners on `ports`, in the cluster on `redis`, advertising `over`. */
function nodeConfig(node: string, ports: Ports, redis: string, over: "srt" | "rtmp"): ServerConfig {
  return {
    rtmp: { listen: `127.0.0.1:${ports.rtmp}` },
    srt: { listen: `127.0.0.1:${ports.srt}` },
    http: { listen: `127.0.0.1:${ports.http}` },
    rtsp: { listen: "off" },
    cluster: { redis, advertise: `${over}://127.0.0.1:${ports[over]}`, ttlMs: TTL_MS, node },
  };
}

/** A node in this process. */
async function inProcess(node: string, redis: string, over: "srt" | "rtmp") {
  const ports = await freePorts();
  const log = new LogLines();
  const server = serve(nodeConfig(node, ports, redis, over), { logger: log });
  await server.ready;
  return { ports, log, server };
}

/** A node as a child process, to be killed. */
async function child(node: string, redis: string, dir: string, over: "srt" | "rtmp") {
  const ports = await freePorts();
  const file = `${dir}/${node}.json`;
  await Deno.writeTextFile(file, JSON.stringify(nodeConfig(node, ports, redis, over)));
  const process = await startServe(["rtmp", "srt", "http"], ["--config", file], { flagged: [] });
  return { ports, process };
}

/** One `/v1/streams` entry, as far as this test reads it. */
interface Listed {
  key: string;
  ingestProtocol: string;
  subscribers: number;
}

/** The streams `/v1/streams` lists on the node at `http`, by key. */
async function listed(http: number): Promise<Record<string, Listed>> {
  const response = await fetch(`http://127.0.0.1:${http}/v1/streams`);
  const streams: Listed[] = await response.json();
  return Object.fromEntries(streams.map((s) => [s.key, s]));
}

/** Where a node plays `live/cam`, by protocol. */
function playUrls(ports: Ports): Record<"rtmp" | "srt" | "hls", string> {
  return {
    rtmp: `rtmp://127.0.0.1:${ports.rtmp}/live/cam`,
    srt: `srt://127.0.0.1:${ports.srt}?streamid=read:live/cam`,
    hls: `http://127.0.0.1:${ports.http}/live/cam/index.m3u8`,
  };
}

/**
 * A page that plays `endpoint` (another origin's WHEP) and posts the video frames decoded,
 * sampled each second until three samples.
 */
const whepPage = (endpoint: string) =>
  `<!doctype html><script>
const post = (body) => fetch("/result", { method: "POST", body: JSON.stringify(body) });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
(async () => {
  try {
    const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    await pc.setLocalDescription(await pc.createOffer());
    const res = await fetch("${endpoint}", {
      method: "POST", headers: { "content-type": "application/sdp" }, body: pc.localDescription.sdp,
    });
    if (res.status !== 201) throw new Error(res.status + " " + (await res.text()));
    await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
    const frames = [], keyframes = [];
    for (let i = 0; i < 30 && frames.length < 3; i++) {
      await sleep(1000);
      (await pc.getStats()).forEach((s) => {
        if (s.type !== "inbound-rtp" || s.kind !== "video" || !(s.framesDecoded > 0)) return;
        frames.push(s.framesDecoded);
        keyframes.push(s.keyFramesDecoded);
      });
    }
    await post({ frames, keyframes });
  } catch (error) {
    await post({ frames: [], keyframes: [], error: String(error) });
  }
})();
</script>`;

const FORMAT = { rtmp: "flv", srt: "mpegts", hls: "mpegts" } as const;

/**
 * A client that exited 0 with nothing on stderr at `-v warning`. An SRT reader may say
 * `<its URL>: Input/output error` last and nothing else: libsrt gives ffmpeg no end of stream
 * but a broken connection when the server closes it as the stream ends.
 */
function assertClean(what: string, out: Finished, srtUrl?: string): void {
  const end = `${srtUrl}: Input/output error\n`;
  const stderr = srtUrl && out.stderr.endsWith(end) ? out.stderr.slice(0, -end.length) : out.stderr;
  assert.deepEqual([out.code, out.timedOut, stderr], [0, false, ""], `${what} exited cleanly`);
}

test.cluster("cluster: edges play what the origin has, one publisher per key, a dead node drops out, Redis down", async (t) => {
  const redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "arcly-cluster-" });
  const procs = new Procs();
  let a: { ports: Ports; process: ServeProcess } | undefined;
  const servers: Server[] = [];
  try {
    a = await child("a", redis.url, dir, "srt");
    const b = await inProcess("b", redis.url, "srt");
    const c = await inProcess("c", redis.url, "rtmp");
    servers.push(b.server, c.server);
    const aPorts = a.ports;

    /** ffmpeg copying `seconds` of `live/cam` from `ports` over `protocol` to a file. */
    const play = (ports: Ports, protocol: "rtmp" | "srt" | "hls", file: string, seconds?: number) =>
      procs.run("ffmpeg", [
        ...["-v", "warning", "-i", playUrls(ports)[protocol]],
        ...(seconds ? ["-t", String(seconds)] : []),
        ...["-c", "copy", "-f", FORMAT[protocol], "-y", `${dir}/${file}`],
      ], LIMIT_MS);

    const onA = publishLive(procs, playUrls(aPorts).rtmp, 50);
    await waitFor("live/cam on A", async () => (await listed(aPorts.http))["live/cam"]);

    await t.step("a second publish of the key on C is refused", async () => {
      const refused = await publishLive(procs, playUrls(c.ports).rtmp, 5);
      assert.notEqual(refused.code, 0, "ffmpeg's publish to C failed");
      await c.log.waitFor(
        /^warn cluster: refused publish "live\/cam" via rtmp from "127\.0\.0\.1:\d+": node "a" \(srt:\/\/127\.0\.0\.1:\d+\) publishes it$/,
      );
      assert.equal((await listed(c.ports.http))["live/cam"], undefined);
    });

    await t.step(
      "B and C play over RTMP, SRT and HLS: one edge copy each, from a keyframe",
      async () => {
        const before = (await listed(aPorts.http))["live/cam"].subscribers;
        const runs = (["b", "c"] as const).flatMap((name) =>
          (["rtmp", "srt", "hls"] as const).map((protocol) => ({
            name,
            protocol,
            ports: { b, c }[name].ports,
            run: play({ b, c }[name].ports, protocol, `${name}-${protocol}`, 4),
          }))
        );
        // While they play: B and C each read A once, whoever plays there.
        await waitFor("the players on B and C", async () => {
          const [onB, onC] = [
            (await listed(b.ports.http))["live/cam"],
            (await listed(c.ports.http))["live/cam"],
          ];
          return onB?.subscribers >= 3 && onC?.subscribers >= 3 || undefined;
        });
        // B's and C's copies over SRT, and the one muxing to TS that both readers share (its
        // feed is a subscription of A's stream too)
        assert.equal((await listed(aPorts.http))["live/cam"].subscribers, before + 2 + 1);
        for (const name of ["b", "c"]) {
          const copy = (await listed({ b, c }[name]!.ports.http))["live/cam"];
          assert.equal(copy.ingestProtocol, "cluster", `${name} has an edge copy`);
        }
        for (const { name, protocol, ports, run } of runs) {
          assertClean(`${protocol} player on ${name}`, await run, playUrls(ports).srt);
          await assertPlaysAv(`${dir}/${name}-${protocol}`, `${protocol} from ${name}`, 25);
        }
        assert.match(await b.log.waitFor(/is pulled from/), /"live\/cam" is pulled from srt:\/\//);
      },
    );

    await t.step("B plays over WHEP in Chromium", async () => {
      const collector = resultCollector(45_000);
      const endpoint = `http://127.0.0.1:${b.ports.http}/live/cam/whep`;
      const page = serveHttp({
        routes: [collector.route, () =>
          new Response(whepPage(endpoint), {
            headers: { "content-type": "text/html" },
          })],
        hostname: "127.0.0.1",
        port: 0,
      });
      const browser = await openInChromium(`http://127.0.0.1:${page.addr.port}/`);
      try {
        const result = await collector.result as {
          frames: number[];
          keyframes: number[];
          error?: string;
        };
        assert.equal(result.error, undefined, b.log.lines.join("\n"));
        assert.ok(result.frames.length >= 2, `samples: ${result.frames}`);
        assert.ok(
          result.frames.at(-1)! > result.frames[0],
          `framesDecoded grows: ${result.frames}`,
        );
        assert.ok(result.keyframes[0] >= 1, "the first frame decoded was a keyframe's");
      } finally {
        await browser.close();
        await page.close();
      }
    });

    await t.step("A killed: B's and C's players end cleanly, C may publish the key", async () => {
      const players = [play(b.ports, "rtmp", "b-long"), play(c.ports, "rtmp", "c-long")];
      await waitFor(
        "the long players on the edges",
        async () =>
          (await listed(b.ports.http))["live/cam"]?.subscribers >= 2 &&
            (await listed(c.ports.http))["live/cam"]?.subscribers >= 2 || undefined,
      );
      await new Promise((resolve) => setTimeout(resolve, 1500)); // a GOP and a half played
      await a!.process.stop("SIGKILL");
      a = undefined;
      assert.notEqual((await onA).code, 0, "A's publisher lost its server");
      assertClean("RTMP player on B", await players[0]);
      assertClean("RTMP player on C", await players[1]);
      await assertPlaysAv(`${dir}/b-long`, "what B played until A died", 1);
      await assertPlaysAv(`${dir}/c-long`, "what C played until A died", 1);

      // C refuses while A's claim lives (at most a TTL), then takes the key.
      let onC: Promise<Finished> | undefined;
      await waitFor("a publish on C accepted", async () => {
        const attempt = publishLive(procs, playUrls(c.ports).rtmp, 30);
        const outcome = await Promise.race([
          attempt.then(() => "ended"),
          waitFor("live/cam on C", async () => (await listed(c.ports.http))["live/cam"], 3000)
            .then(() => "live", () => "not yet"),
        ]);
        if (outcome === "live") onC = attempt;
        return outcome === "live" || undefined;
      }, TTL_MS * 4 + 15_000);
      assert.equal((await listed(c.ports.http))["live/cam"].ingestProtocol, "rtmp");
      assert.ok(onC);
    });

    await t.step("B plays the key from its new node, C, over RTMP", async () => {
      const run = await play(b.ports, "rtmp", "b-from-c", 3);
      assertClean("RTMP player on B", run);
      await assertPlaysAv(`${dir}/b-from-c`, "B's copy of C's stream", 25);
      await b.log.waitFor(/"live\/cam" is pulled from rtmp:\/\/127\.0\.0\.1:\d+\/live\/cam$/);
    });

    await t.step("Redis down: C's stream goes on, and C says so once", async () => {
      await redis.stop();
      await c.log.waitFor(
        /^warn cluster: Redis at redis:\/\/127\.0\.0\.1:\d+ is unreachable/,
        10_000,
      );
      const before = c.server.registry.get("live", "cam")!.lastFrameMs;
      await new Promise((resolve) => setTimeout(resolve, TTL_MS)); // three refresh rounds fail
      const stream = c.server.registry.get("live", "cam");
      assert.ok(stream && !stream.closed, "the stream is live");
      assert.ok(stream.lastFrameMs > before, "and its frames flow");
      const run = await play(c.ports, "rtmp", "c-redis-down", 2);
      assertClean("RTMP player on C with Redis down", run);
      const outages = c.log.lines.filter((line) => / is unreachable /.test(line));
      assert.equal(outages.length, 1, c.log.lines.join("\n"));
    });
  } finally {
    procs.killAll();
    await a?.process.stop("SIGKILL").catch(() => {});
    await Promise.all(servers.map((server) => server.close()));
    await redis.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
