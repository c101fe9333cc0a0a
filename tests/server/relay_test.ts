/**
 * Push relays with real clients: ffmpeg publishes to server A, A relays over RTMP to server
 * B (ours, and nginx-rtmp), ffmpeg plays from B; a target that goes away is reconnected, and
 * one that refuses says why.
 */

import assert from "node:assert/strict";
import dgram from "node:dgram";
import { FrameFlags, Registry, type StreamHandle } from "../../mod.ts";
import { serveRtmp } from "../../ingest/rtmp/mod.ts";
import { serveSrt } from "../../ingest/srt/mod.ts";
import { makeCert } from "../_util/tls.ts";
import { parseRtmpUrl, RtmpPublisher } from "../../ingest/rtmp/client.ts";
import { isRelayTarget, PushRelay } from "../../server/relay.ts";
import { assertPlaysAv, Procs, publishLive, recordFlv } from "../_util/ffmpeg.ts";
import { LogLines } from "../_util/log.ts";
import { startNginx } from "../_util/nginx.ts";
import { freeTcpPort as freePort } from "../_util/ports.ts";
import { testsWith } from "../_util/tools.ts";
import { within } from "../_util/within.ts";

const test = await testsWith({
  ffmpeg: ["ffmpeg", "ffprobe"],
  nginx: ["ffmpeg", "ffprobe", "nginx"],
});

async function until<T>(what: string, check: () => T | undefined, ms = 20_000): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The stream `live/NAME` once it is live with both configs. */
function live(registry: Registry, name: string): Promise<StreamHandle> {
  return until(`the publish of live/${name}`, () => {
    const handle = registry.get("live", name);
    return handle?.cachedConfigs().video && handle.cachedConfigs().audio ? handle : undefined;
  });
}

test.ffmpeg("rtmp url: app, key and query; bad URLs are refused", () => {
  assert.deepEqual(parseRtmpUrl("rtmp://[::1]:1936/live/a/b?user=x&pass=y"), {
    hostname: "::1",
    port: 1936,
    tls: false,
    app: "live",
    tcUrl: "rtmp://[::1]:1936/live",
    stream: "a/b?user=x&pass=y",
  });
  assert.deepEqual(parseRtmpUrl("rtmps://example.com/app/key"), {
    hostname: "example.com",
    port: 443,
    tls: true,
    app: "app",
    tcUrl: "rtmps://example.com/app",
    stream: "key",
  });
  for (const bad of ["http://h/live/a", "rtmp://h/live", "rtmp://h/", "nonsense"]) {
    assert.throws(() => parseRtmpUrl(bad), RangeError, bad);
  }
});

test.ffmpeg("push relay: A relays to B over RTMP, ffmpeg plays B; B restarts and the relay reconnects", async () => {
  const a = new Registry();
  const b = new Registry();
  const serverA = serveRtmp({ registry: a, hostname: "127.0.0.1", port: 0 });
  let serverB = serveRtmp({ registry: b, hostname: "127.0.0.1", port: 0 });
  const portB = serverB.addr.port;
  const log = new LogLines();
  const procs = new Procs();
  let relay: PushRelay | undefined;
  try {
    const publisher = publishLive(procs, `rtmp://127.0.0.1:${serverA.addr.port}/live/cam`, 16);
    const source = await live(a, "cam");
    relay = new PushRelay(source, `rtmp://127.0.0.1:${portB}/live/copy?token=secret`, {
      logger: log,
      backoffMs: 200,
    });
    assert.equal(
      relay.status().target,
      `rtmp://127.0.0.1:${portB}/live/…?…`,
      "key and query hidden",
    );
    const copy = await until("the relay on B", () => b.get("live", "copy"));
    assert.equal(relay.status().state, "relaying");
    const first = await recordFlv(procs, `rtmp://127.0.0.1:${portB}/live/copy`, 3);
    await assertPlaysAv(first, "B, first connection");
    // the first frames on B are the configs, then a keyframe: the replay started it
    const replay = copy.replayBuffer();
    assert.ok(replay[0].flags & FrameFlags.CONFIG);

    // B goes away and comes back on the same port: the relay waits, then publishes again
    await serverB.close();
    await until("the relay noticing", () => relay!.status().state !== "relaying" || undefined);
    serverB = serveRtmp({ registry: b, hostname: "127.0.0.1", port: portB });
    await until("a second connection", () => relay!.status().connections >= 2 || undefined);
    await until("the relay on B again", () => b.get("live", "copy"));
    const second = await recordFlv(procs, `rtmp://127.0.0.1:${portB}/live/copy`, 2);
    await assertPlaysAv(second, "B, after the reconnect");
    assert.ok(relay.status().lastError, "the drop was recorded");
    assert.ok(
      log.lines.some((l) => /relay live\/cam to .*again in \d+ ms/.test(l)),
      log.lines.join("\n"),
    );
    assert.ok(!log.lines.some((l) => l.includes("secret")), "the token stays out of the log");

    await publisher;
    await within(relay.finished, 10_000, "the relay ends with its stream");
    assert.equal(relay.status().state, "stopped");
  } finally {
    relay?.stop();
    procs.killAll();
    await serverA.close();
    await serverB.close();
  }
});

test.ffmpeg("push relay over SRT (encrypted) and RTMPS: B gets the stream, ffmpeg plays it from B", async () => {
  const a = new Registry();
  const b = new Registry();
  const dir = await Deno.makeTempDir({ prefix: "arcly-relay-" });
  const cert = await makeCert(dir, "b");
  const serverA = serveRtmp({ registry: a, hostname: "127.0.0.1", port: 0 });
  const rtmpB = serveRtmp({
    registry: b,
    hostname: "127.0.0.1",
    port: 0,
    tls: { hostname: "127.0.0.1", port: 0, certFile: cert.certFile, keyFile: cert.keyFile },
  });
  const srtB = await serveSrt({
    registry: b,
    hostname: "127.0.0.1",
    port: 0,
    passphrase: "relay-passphrase",
  });
  const log = new LogLines();
  const procs = new Procs();
  const relays: PushRelay[] = [];
  try {
    const publisher = publishLive(procs, `rtmp://127.0.0.1:${serverA.addr.port}/live/cam`, 12);
    const source = await live(a, "cam");
    const srtUrl = `srt://127.0.0.1:${srtB.addr.port}?streamid=publish:live/viasrt` +
      `&passphrase=relay-passphrase&pbkeylen=32`;
    relays.push(new PushRelay(source, srtUrl, { logger: log, backoffMs: 200 }));
    relays.push(
      new PushRelay(source, `rtmps://localhost:${rtmpB.tlsAddr!.port}/live/viartmps`, {
        logger: log,
        backoffMs: 200,
        caCerts: [cert.cert],
      }),
    );
    assert.equal(relays[0].status().target, `srt://127.0.0.1:${srtB.addr.port}?…`);
    for (const name of ["viasrt", "viartmps"]) {
      await live(b, name);
      const file = await recordFlv(procs, `rtmp://127.0.0.1:${rtmpB.addr.port}/live/${name}`, 3);
      await assertPlaysAv(file, `B's ${name}`);
    }
    for (const relay of relays) assert.equal(relay.status().state, "relaying");
    assert.ok(!log.lines.some((l) => l.includes("relay-passphrase")), "the passphrase stays out");
    await publisher;
    for (const relay of relays) {
      await within(relay.finished, 10_000, "the relay ends with its stream");
      assert.equal(relay.status().state, "stopped");
      assert.ok(relay.status().frames > 100);
    }
  } finally {
    for (const relay of relays) relay.stop();
    procs.killAll();
    await serverA.close();
    await rtmpB.close();
    await srtB.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("push relay: stop() does not wait for a set-up to a dead target to time out", async () => {
  const registry = new Registry();
  const handle = registry.startPublish("live", "cam", { protocol: "test" });
  const mute = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => mute.bind(0, "127.0.0.1", resolve));
  let inductions = 0;
  mute.on("message", () => void inductions++);
  try {
    const relay = new PushRelay(handle, `srt://127.0.0.1:${mute.address().port}`, {
      timeoutMs: 60_000,
    });
    while (inductions === 0) await new Promise((r) => setTimeout(r, 10));
    assert.equal(relay.status().state, "connecting");
    relay.stop();
    await within(relay.finished, 5000, "the relay stops while connecting");
    assert.equal(relay.status().state, "stopped");
    // The handshake was given up too: no more inductions arrive.
    const seen = inductions;
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(inductions, seen);
  } finally {
    registry.closeAll();
    await new Promise<void>((resolve) => mute.close(() => resolve()));
  }
});

Deno.test("relay targets: rtmp, rtmps and srt URLs only", () => {
  assert.deepEqual(
    ["rtmp://h/a/b", "rtmps://h/a/b", "srt://h:1?streamid=publish:a/b", "http://h/", "x"].map(
      isRelayTarget,
    ),
    [true, true, true, false, false],
  );
});

test.ffmpeg("rtmp publisher: a refused publish rejects with the server's reason", async () => {
  const registry = new Registry();
  const server = serveRtmp({ registry, hostname: "127.0.0.1", port: 0 });
  try {
    registry.startPublish("live", "taken", { protocol: "test" });
    await assert.rejects(
      RtmpPublisher.connect(`rtmp://127.0.0.1:${server.addr.port}/live/taken`),
      /NetStream\.Publish\.BadName/,
    );
    await assert.rejects(RtmpPublisher.connect(`rtmp://127.0.0.1:1/live/x`, { timeoutMs: 2000 }));
  } finally {
    registry.closeAll();
    await server.close();
  }
});

test.nginx("push relay: nginx-rtmp accepts what the relay publishes, and ffmpeg plays it from there", async () => {
  const registry = new Registry();
  const server = serveRtmp({ registry, hostname: "127.0.0.1", port: 0 });
  const procs = new Procs();
  const port = freePort();
  const nginx = await startNginx(
    procs,
    `events { worker_connections 64; }
rtmp { server { listen 127.0.0.1:${port}; application live { live on; } } }
`,
    { modules: "load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;\n" },
  );
  let relay: PushRelay | undefined;
  try {
    const publisher = publishLive(procs, `rtmp://127.0.0.1:${server.addr.port}/live/cam`, 12);
    const source = await live(registry, "cam");
    relay = new PushRelay(source, `rtmp://127.0.0.1:${port}/live/relayed`, { backoffMs: 200 });
    await until("the relay publishing", () => relay!.status().state === "relaying" || undefined);
    const file = await recordFlv(procs, `rtmp://127.0.0.1:${port}/live/relayed`, 3);
    await assertPlaysAv(file, "nginx-rtmp");
    relay.stop();
    await within(relay.finished, 10_000, "the relay stops");
    await publisher;
  } finally {
    relay?.stop();
    await nginx.stop();
    procs.killAll();
    await server.close();
  }
});
