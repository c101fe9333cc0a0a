/**
 * The origin/edge cluster with real components: `redis-server` on a free port, node A as a
 * child `cli.ts serve` (so that it can be killed), nodes B and C as `serve()` in this
 * process, ffmpeg as publisher and players. A publish is one node's across the cluster; a
 * node that dies drops out within the TTL and its key can be published elsewhere; Redis down,
 * local streams go on and the node says so once.
 */

import assert from "node:assert/strict";
import { serve, type Server, type ServerConfig } from "../../server/mod.ts";
import { Procs, publishLive } from "../_util/ffmpeg.ts";
import { LogLines } from "../_util/log.ts";
import { freeTcpPort, freeUdpPort } from "../_util/ports.ts";
import { startRedis } from "../_util/redis.ts";
import { type ServeProcess, startServe, waitFor } from "../_util/serve.ts";
import { testsWith } from "../_util/tools.ts";

const test = await testsWith({ cluster: ["redis-server", "ffmpeg", "ffprobe"] });

/** Claims live this long unless refreshed: short, so that A's death shows within seconds. */
const TTL_MS = 1500;

/** Where a node listens. */
interface Ports {
  rtmp: number;
  srt: number;
  http: number;
}

async function freePorts(): Promise<Ports> {
  return { rtmp: freeTcpPort(), srt: await freeUdpPort(), http: freeTcpPort() };
}

/** A node's config: its listeners on `ports`, in the cluster on `redis`, advertised over RTMP. */
function nodeConfig(node: string, ports: Ports, redis: string): ServerConfig {
  return {
    rtmp: { listen: `127.0.0.1:${ports.rtmp}` },
    srt: { listen: `127.0.0.1:${ports.srt}` },
    http: { listen: `127.0.0.1:${ports.http}` },
    rtsp: { listen: "off" },
    cluster: { redis, advertise: `rtmp://127.0.0.1:${ports.rtmp}`, ttlMs: TTL_MS, node },
  };
}

/** A node in this process. */
async function inProcess(node: string, redis: string) {
  const ports = await freePorts();
  const log = new LogLines();
  const server = serve(nodeConfig(node, ports, redis), { logger: log });
  await server.ready;
  return { ports, log, server };
}

/** A node as a child process, to be killed. */
async function child(node: string, redis: string, dir: string) {
  const ports = await freePorts();
  const file = `${dir}/${node}.json`;
  await Deno.writeTextFile(file, JSON.stringify(nodeConfig(node, ports, redis)));
  const process = await startServe(["rtmp", "srt", "http"], ["--config", file], { flagged: [] });
  return { ports, process };
}

/** The keys `/v1/streams` lists on the node at `http`, with their ingest protocols. */
async function listed(http: number): Promise<Record<string, string>> {
  const response = await fetch(`http://127.0.0.1:${http}/v1/streams`);
  const streams: { key: string; ingestProtocol: string }[] = await response.json();
  return Object.fromEntries(streams.map((s) => [s.key, s.ingestProtocol]));
}

test.cluster("cluster: one publisher per key, a dead node drops out, Redis down", async (t) => {
  const redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "arcly-cluster-" });
  const procs = new Procs();
  let a: { ports: Ports; process: ServeProcess } | undefined;
  const servers: Server[] = [];
  try {
    a = await child("a", redis.url, dir);
    const b = await inProcess("b", redis.url);
    const c = await inProcess("c", redis.url);
    servers.push(b.server, c.server);
    const rtmp = (ports: Ports) => `rtmp://127.0.0.1:${ports.rtmp}/live/cam`;

    const onA = publishLive(procs, rtmp(a.ports), 60);
    await waitFor("live/cam on A", async () => (await listed(a!.ports.http))["live/cam"]);

    await t.step("a second publish of the key on C is refused", async () => {
      const refused = await publishLive(procs, rtmp(c.ports), 5);
      assert.notEqual(refused.code, 0, "ffmpeg's publish to C failed");
      await c.log.waitFor(
        /^warn cluster: refused publish "live\/cam" via rtmp from "127\.0\.0\.1:\d+": node "a" \(rtmp:\/\/127\.0\.0\.1:\d+\) publishes it$/,
      );
      assert.equal((await listed(c.ports.http))["live/cam"], undefined);
    });

    await t.step("A killed: its claim expires, and the key can be published on C", async () => {
      await a!.process.stop("SIGKILL");
      a = undefined;
      const publisher = await onA;
      assert.notEqual(publisher.code, 0, "A's publisher lost its server");
      // C refuses while A's claim lives (at most a TTL), then takes the key.
      let onC: ReturnType<typeof publishLive> | undefined;
      await waitFor("a publish on C accepted", async () => {
        const attempt = publishLive(procs, rtmp(c.ports), 30);
        const outcome = await Promise.race([
          attempt.then(() => "ended"),
          waitFor("live/cam on C", async () => (await listed(c.ports.http))["live/cam"], 3000)
            .then(() => "live", () => "not yet"),
        ]);
        if (outcome === "live") onC = attempt;
        return outcome === "live" || undefined;
      }, TTL_MS * 4 + 10_000);
      assert.equal((await listed(c.ports.http))["live/cam"], "rtmp");
      assert.ok(onC);
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
