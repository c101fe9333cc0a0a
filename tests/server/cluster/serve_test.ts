import assert from "node:assert/strict";
import type { AuthRequest } from "../../../mod.ts";
import { serve, type ServerConfig } from "../../../server/mod.ts";
import { ClusterDirectory } from "../../../server/cluster/mod.ts";
import { LogLines } from "../../_util/log.ts";
import { startRedis } from "../../_util/redis.ts";
import { testsWith } from "../../_util/tools.ts";

const test = await testsWith({ redis: ["redis-server"] });

const publish: AuthRequest = {
  action: "publish",
  app: "live",
  stream: "cam",
  query: "",
  protocol: "rtmp",
  peer: "127.0.0.1:5000",
};

test.redis("serve() in a cluster starts with Redis down, publishes locally, claims once Redis is up", async () => {
  const redis = await startRedis();
  await redis.stop();
  const log = new LogLines();
  const config: ServerConfig = {
    rtmp: { listen: "off" },
    rtsp: { listen: "off" },
    srt: { listen: "off" },
    http: { listen: "off" },
    cluster: { redis: redis.url, advertise: "rtmp://127.0.0.1:1935", ttlMs: 600, node: "a" },
  };
  const server = serve(config, { logger: log });
  const other = new ClusterDirectory({
    redis: redis.url,
    node: "b",
    advertise: "rtmp://127.0.0.2:1935",
  });
  try {
    await server.ready;
    await log.waitFor(/^warn cluster: Redis at redis:\/\/127\.0\.0\.1:\d+ is unreachable/);
    assert.ok(log.lines.some((line) => /^info cluster: node "a" joined/.test(line)));
    assert.equal(await server.registry.authorize(publish), true, "a publish goes on");
    server.registry.startPublish("live", "cam", { protocol: "rtmp" });
    await redis.start();
    assert.ok(await other.connected(5000));
    let holder;
    for (let i = 0; i < 100 && !(holder = await other.lookup("live/cam")); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.deepEqual(holder, { node: "a", advertise: "rtmp://127.0.0.1:1935" });
    assert.equal(log.lines.filter((line) => / is unreachable /.test(line)).length, 1);
    const reload = await server.reload({ ...config, cluster: { ...config.cluster!, ttlMs: 900 } });
    assert.deepEqual(reload.restartNeeded, ["cluster"]);
    await server.close();
    assert.equal(await other.lookup("live/cam"), undefined, "close() released the claim");
  } finally {
    await server.close();
    await other.close();
    await redis.stop();
  }
});

test.redis("a cluster node serves on one worker: its primary claims every publish first", async () => {
  const redis = await startRedis();
  const log = new LogLines();
  const server = serve({
    workers: 2,
    rtmp: { listen: "127.0.0.1:0" },
    rtsp: { listen: "off" },
    srt: { listen: "off" },
    http: { listen: "off" },
    cluster: { redis: redis.url, advertise: "rtmp://127.0.0.1:1935", node: "a" },
  }, { logger: log });
  try {
    await server.ready;
    assert.ok(
      log.lines.includes(
        "warn workers: a cluster node serves on one worker (claims are taken by the primary)",
      ),
      log.lines.join("\n"),
    );
  } finally {
    await server.close();
    await redis.stop();
  }
});
