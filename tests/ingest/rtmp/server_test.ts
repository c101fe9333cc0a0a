import assert from "node:assert/strict";
import { FrameFlags, type MediaFrame, Registry } from "../../../mod.ts";
import {
  ChunkWriter,
  commandMessage,
  dataMessage,
  MessageType,
  parseData,
  parseUserControl,
  type RtmpMessage,
  type RtmpServerOptions,
  serveRtmp,
  setChunkSizeMessage,
  UserControlEvent,
  userControlMessage,
  windowAckSizeMessage,
} from "../../../ingest/rtmp/mod.ts";
import { buildAvcConfig, describeConfig } from "../../../media/codec/mod.ts";
import { encodeAudioTag, encodeVideoTag } from "../../../media/flv/mod.ts";
import { TsDemuxer } from "../../../media/ts/mod.ts";
import { concat } from "../../_util/bytes.ts";
import { makeFixture, testsrc } from "../../_util/ffmpeg.ts";
import { assertConfigFirst, readAll } from "../../_util/frames.ts";
import { LogLines } from "../../_util/log.ts";
import { statusCode, TestClient } from "./_client.ts";
import { within } from "../../_util/within.ts";
import { hex, unhex } from "../../_util/bytes.ts";
import { prng } from "../../_util/fuzz.ts";
import { testsWith } from "../../_util/tools.ts";

const test = await testsWith({ x265: ["ffmpeg", "ffprobe", "ffmpeg:libx265"] });

const SPS = new Uint8Array([0x67, 0x42, 0xc0, 0x1e, 0xda, 0x05, 0x07, 0xe4]); // 320x240
const PPS = new Uint8Array([0x68, 0xce, 0x3c, 0x80]);

function frame(kind: "video" | "audio", ms: number, flags: number, data: Uint8Array): MediaFrame {
  return {
    track: kind === "video" ? 0 : 1,
    kind,
    codec: kind === "video" ? "h264" : "aac",
    pts: ms * 90,
    dts: ms * 90,
    flags,
    data,
  };
}

const videoConfig = frame(
  "video",
  0,
  FrameFlags.CONFIG,
  buildAvcConfig({ sps: [SPS], pps: [PPS] }),
);
const audioConfig = frame("audio", 0, FrameFlags.CONFIG, new Uint8Array([0x12, 0x10]));
const idr = (ms: number) =>
  frame("video", ms, FrameFlags.KEYFRAME, new Uint8Array([0, 0, 0, 2, 0x65, ms & 0xff]));
const slice = (ms: number) => frame("video", ms, 0, new Uint8Array([0, 0, 0, 2, 0x41, ms & 0xff]));
const aac = (ms: number) =>
  frame("audio", ms, FrameFlags.KEYFRAME, new Uint8Array([0x21, ms & 0xff]));

/** An RTMP media message for `f` at the 32-bit time `time`. */
function media(streamId: number, f: MediaFrame, time = f.dts / 90): RtmpMessage {
  const video = f.kind === "video";
  return {
    csid: video ? 6 : 4,
    typeId: video ? MessageType.VIDEO : MessageType.AUDIO,
    streamId,
    timestamp: time >>> 0,
    payload: video ? encodeVideoTag(f) : encodeAudioTag(f),
  };
}

async function withServer(
  opts: Partial<RtmpServerOptions>,
  body: (port: number, registry: Registry, log: LogLines) => Promise<void>,
): Promise<void> {
  const registry = opts.registry ?? new Registry({ describeConfig });
  const log = new LogLines();
  const server = serveRtmp({ hostname: "127.0.0.1", port: 0, logger: log, ...opts, registry });
  const clients: TestClient[] = [];
  const open = TestClient.open;
  TestClient.open = async (port) => {
    const c = await open(port);
    clients.push(c);
    return c;
  };
  try {
    await body(server.addr.port, registry, log);
    assert.ok(!log.lines.some((l) => l.startsWith("error")), log.lines.join("\n"));
  } finally {
    TestClient.open = open;
    for (const c of clients) c.close();
    await server.close();
    await Promise.all(clients.map((c) => c.closed));
  }
}

async function publisher(port: number, name: string): Promise<[TestClient, number]> {
  const c = await TestClient.open(port);
  await c.handshake();
  const id = await c.connect();
  assert.equal(await c.publish(id, name), "NetStream.Publish.Start");
  return [c, id];
}

Deno.test("rtmp server: connect replies, publish with metadata, configs and a 32-bit timestamp wrap", async () => {
  await withServer({}, async (port, registry, log) => {
    const c = await TestClient.open(port);
    await c.handshake();
    await c.command(0, "connect", 1, {
      app: "live",
      tcUrl: "rtmp://h/live",
      fourCcList: ["hvc1", "xxxx"],
    });
    const ack = await c.next((m) => m.typeId === MessageType.WINDOW_ACK_SIZE);
    assert.equal(new DataView(ack.payload.buffer).getUint32(0), 2_500_000);
    await c.next((m) => m.typeId === MessageType.SET_PEER_BANDWIDTH);
    const connected = await c.nextCommand(["_result"]);
    assert.equal(connected.transactionId, 1);
    assert.deepEqual((connected.object as Record<string, unknown>).fourCcList, ["hvc1"]);
    assert.equal(statusCode(connected), "NetConnection.Connect.Success");
    assert.equal(c.reader.chunkSize, 4096, "the server announced its chunk size");

    await c.command(0, "releaseStream", 2, null, "cam");
    await c.command(0, "FCPublish", 3, null, "cam");
    assert.equal((await c.nextCommand(["onFCPublish"])).name, "onFCPublish");
    assert.equal((await c.nextCommand(["_result"])).transactionId, 2); // releaseStream
    assert.equal((await c.nextCommand(["_result"])).transactionId, 3); // FCPublish
    await c.command(0, "createStream", 4, null);
    const created = await c.nextCommand(["_result"]);
    assert.equal(created.transactionId, 4);
    const id = created.args[0] as number;
    assert.equal(id, 1);
    assert.equal(await c.publish(id, "cam?token=abc"), "NetStream.Publish.Start");
    await log.waitFor(/publish live\/cam$/);
    const handle = registry.get("live", "cam")!;
    const sub = handle.subscribe();

    c.writer.chunkSize = 64;
    await c.send(setChunkSizeMessage(64));
    const meta = new Map<string, number>([["width", 320], ["height", 240], ["framerate", 25]]);
    await c.send(dataMessage(5, id, "@setDataFrame", "onMetaData", meta));
    const wrap = 0xffff_ff00; // the stream starts 256 ms before the 32-bit timestamp wraps
    const sent = [videoConfig, audioConfig, idr(0), aac(10), slice(40), aac(300), slice(400)];
    for (const f of sent) await c.send(media(id, f, wrap + f.dts / 90));
    await c.command(id, "FCUnpublish", 5, null, "cam");
    await c.command(0, "deleteStream", 6, null, id);

    const got = await readAll(sub);
    const base = wrap * 90;
    assert.deepEqual(
      got.map((f) => [f.kind, f.flags, f.dts - base, Array.from(f.data)]),
      sent.map((f) => [f.kind, f.flags, f.dts, Array.from(f.data)]),
    );
    const m = handle.metadata();
    assert.deepEqual([m.width, m.height, m.videoCodec, m.audioCodec, m.ingestProtocol], [
      320,
      240,
      "avc1.42c01e",
      "mp4a.40.2",
      "rtmp",
    ]);
    assert.equal(registry.get("live", "cam"), undefined, "deleteStream ended the publish");
    c.close();
    await log.waitFor(/unpublish live\/cam/);
  });
});

Deno.test("rtmp server: a player gets status, metadata, configs and GOP, live frames, then the end", async () => {
  await withServer({}, async (port) => {
    const [pub, pid] = await publisher(port, "show");
    // published times run across the 32-bit wrap: ingest unwraps, egress wraps again
    const base = 0xffff_fc00;
    const at = (ms: number) => (base + ms) >>> 0;
    for (const f of [videoConfig, audioConfig, idr(1000), aac(1010), slice(1040)]) {
      await pub.send(media(pid, f, base + f.dts / 90));
    }
    await pub.send(userControlMessage(UserControlEvent.PING_REQUEST, 77));

    const player = await TestClient.open(port);
    await player.handshake();
    const sid = await player.connect();
    await player.command(sid, "play", 3, null, "show", -2000);
    const begin = await player.next((m) => m.typeId === MessageType.USER_CONTROL);
    assert.deepEqual(parseUserControl(begin.payload), { event: 0, value: sid, extra: 0 });
    assert.equal(statusCode(await player.nextCommand(["onStatus"])), "NetStream.Play.Reset");
    assert.equal(statusCode(await player.nextCommand(["onStatus"])), "NetStream.Play.Start");
    const data = [
      await player.next((m) => m.typeId === MessageType.DATA_AMF0),
      await player.next((m) => m.typeId === MessageType.DATA_AMF0),
    ].map((m) => parseData(m.payload));
    assert.deepEqual(data[0], ["|RtmpSampleAccess", true, true]);
    assert.equal(data[1][0], "onMetaData");
    assert.deepEqual(
      [
        (data[1][1] as Record<string, unknown>).width,
        (data[1][1] as Record<string, unknown>).videocodecid,
      ],
      [320, 7],
    );

    const isMedia = (m: RtmpMessage) =>
      m.typeId === MessageType.AUDIO || m.typeId === MessageType.VIDEO;
    const replay = [];
    for (let i = 0; i < 5; i++) replay.push(await player.next(isMedia));
    // configs replay at the first frame's time; then the GOP as published
    assert.deepEqual(
      replay.map((m) => [m.typeId, m.timestamp, m.streamId]),
      [[9, at(1000), sid], [8, at(1000), sid], [9, at(1000), sid], [8, at(1010), sid], [
        9,
        at(1040),
        sid,
      ]],
    );
    assert.deepEqual(replay[0].payload, encodeVideoTag(videoConfig));
    assert.deepEqual(replay[2].payload, encodeVideoTag(idr(1000)));

    await pub.send(media(pid, slice(1080), base + 1080));
    const live = await player.next(isMedia);
    assert.deepEqual([live.timestamp, live.payload], [at(1080), encodeVideoTag(slice(1080))]);
    assert.equal(at(1080), 56);

    const pong = await pub.next((m) =>
      m.typeId === MessageType.USER_CONTROL &&
      parseUserControl(m.payload).event === UserControlEvent.PING_RESPONSE
    );
    assert.equal(parseUserControl(pong.payload).value, 77);

    pub.close(); // the publisher vanishes: the player is told and disconnected
    await player.next((m) =>
      m.typeId === MessageType.USER_CONTROL &&
      parseUserControl(m.payload).event === UserControlEvent.STREAM_EOF
    );
    assert.equal(
      statusCode(await player.nextCommand(["onStatus"])),
      "NetStream.Play.UnpublishNotify",
    );
    await within(player.closed, 3000, "player disconnect");
  });
});

Deno.test("rtmp server: a second publisher gets BadName and the first goes on; unknown streams and apps are refused", async () => {
  const queries: string[] = [];
  const registry = new Registry({
    authorize: (req) => {
      queries.push(`${req.action} ${req.stream} ${req.query}`);
      return !req.query.includes("deny");
    },
  });
  await withServer({ registry }, async (port, registry, log) => {
    const [first, id] = await publisher(port, "busy?k=1");
    const handle = registry.get("live", "busy")!;
    const sub = handle.subscribe();

    const second = await TestClient.open(port);
    await second.handshake();
    assert.equal(await second.publish(await second.connect(), "busy"), "NetStream.Publish.BadName");
    await within(second.closed, 3000, "refused publisher disconnect");

    const denied = await TestClient.open(port);
    await denied.handshake();
    assert.equal(
      await denied.publish(await denied.connect(), "other?deny"),
      "NetStream.Publish.Denied",
    );

    const player = await TestClient.open(port);
    await player.handshake();
    await player.command(await player.connect(), "play", 3, null, "nothing");
    assert.equal(
      statusCode(await player.nextCommand(["onStatus"])),
      "NetStream.Play.StreamNotFound",
    );
    await within(player.closed, 3000, "player of an unknown stream disconnect");

    const wrongApp = await TestClient.open(port);
    await wrongApp.handshake();
    await wrongApp.command(0, "connect", 1, { app: "nope" });
    const rejected = await wrongApp.nextCommand(["_error"]);
    assert.equal(statusCode(rejected), "NetConnection.Connect.Rejected");
    await within(wrongApp.closed, 3000, "unknown app disconnect");

    // the first publisher was not disturbed
    assert.equal(registry.get("live", "busy"), handle);
    await first.send(media(id, videoConfig));
    await first.send(media(id, idr(0)));
    const reader = sub.getReader();
    assert.equal((await reader.read()).value?.flags, FrameFlags.CONFIG);
    assert.deepEqual((await reader.read()).value?.data, idr(0).data);
    reader.releaseLock();
    await sub.cancel();
    assert.deepEqual(queries, [
      "publish busy k=1",
      "publish busy ",
      "publish other deny",
      "read nothing ",
    ]);
    await log.waitFor(/publish live\/busy refused: stream live\/busy already has a publisher/);
  });
});

Deno.test("rtmp server: acknowledges after the peer's window", async () => {
  await withServer({}, async (port) => {
    const [c, id] = await publisher(port, "acked");
    await c.send(windowAckSizeMessage(1000));
    for (let i = 0; i < 10; i++) await c.send(media(id, frame("audio", i, 0, new Uint8Array(300))));
    const ack = await c.next((m) => m.typeId === MessageType.ACKNOWLEDGEMENT);
    const acked = new DataView(ack.payload.buffer).getUint32(0);
    assert.ok(acked >= 1000, `ack ${acked}`);
  });
});

Deno.test("rtmp server: bad peers are closed with a logged reason and the server goes on", async () => {
  await withServer({
    handshakeTimeoutMs: 200,
    connectTimeoutMs: 300,
    idleTimeoutMs: 300,
    maxMessageLength: 1000,
  }, async (
    port,
    registry,
    log,
  ) => {
    const [good, goodId] = await publisher(port, "steady");
    let t = 0;
    const keepAlive = setInterval(() => void good.send(media(goodId, aac(t += 20))), 50);

    const cases: [string, (c: TestClient) => Promise<void>, RegExp][] = [
      [
        "never finishes the handshake",
        (c) => c.write(new Uint8Array([3, 1, 2, 3])),
        /handshake not completed within 200 ms/,
      ],
      ["RTMPE", async (c) => {
        const c0c1 = new Uint8Array(1537);
        c0c1[0] = 6;
        await c.write(c0c1);
      }, /unsupported RTMP version 6/],
      [
        "stops after the handshake",
        (c) => c.handshake().then(() => {}),
        /no connect within 300 ms of the handshake/,
      ],
      ["chunk size 2^31", async (c) => {
        await c.handshake();
        await c.write(unhex("02 000000 000004 01 00000000 80000000"));
      }, /chunk size 2147483648 out of range/],
      ["message too long", async (c) => {
        await c.handshake();
        await c.write(unhex("03 000000 001000 14 00000000"));
      }, /message length 4096 exceeds the limit of 1000/],
      ["AMF3 command", async (c) => {
        await c.handshake();
        await c.send({
          csid: 3,
          typeId: MessageType.COMMAND_AMF3,
          streamId: 0,
          timestamp: 0,
          payload: new Uint8Array([0, 2, 0, 1, 0x41]),
        });
      }, /AMF3-encoded messages \(type 17\) are not supported/],
      ["bad AMF0", async (c) => {
        await c.handshake();
        await c.send({
          csid: 3,
          typeId: MessageType.COMMAND_AMF0,
          streamId: 0,
          timestamp: 0,
          payload: new Uint8Array([2, 0, 9, 0x41]),
        });
      }, /bad AMF0/],
      ["command before connect", async (c) => {
        await c.handshake();
        await c.send(commandMessage(3, 0, "publish", 1, null, "x"));
      }, /command publish before connect/],
      ["bad video tag", async (c) => {
        const id = await c.handshake().then(() => c.connect());
        assert.equal(await c.publish(id, "broken"), "NetStream.Publish.Start");
        await c.send({
          csid: 6,
          typeId: MessageType.VIDEO,
          streamId: id,
          timestamp: 0,
          payload: new Uint8Array([0x17, 0, 0, 0, 0, 1]),
        });
      }, /.+/],
    ];
    for (const [name, act, reason] of cases) {
      const before = log.lines.length;
      const c = await TestClient.open(port);
      await act(c);
      await within(c.closed, 5000, `close of "${name}"`);
      const line = await log.waitFor(/closed: /).then(() =>
        log.lines.slice(before).find((l) => / closed: /.test(l) && l.startsWith("warn"))
      );
      assert.ok(line, `no warning for "${name}":\n${log.lines.slice(before).join("\n")}`);
      assert.match(line, reason, name);
    }
    assert.equal(registry.get("live", "broken"), undefined, "the broken publish was ended");

    clearInterval(keepAlive);
    assert.ok(registry.get("live", "steady"), "the good publisher kept going all along");
    const [again] = await publisher(port, "fresh");
    assert.ok(registry.get("live", "fresh"));
    again.close();
  });
});

Deno.test("rtmp server fuzz: mutated publish sessions only ever close their own connection", async () => {
  await withServer({
    idleTimeoutMs: 300,
    handshakeTimeoutMs: 300,
    connectTimeoutMs: 300,
    commandTimeoutMs: 300,
  }, async (port, registry, log) => {
    const writer = new ChunkWriter();
    const parts = [
      commandMessage(3, 0, "connect", 1, { app: "live", tcUrl: "rtmp://x/live" }),
      commandMessage(3, 0, "createStream", 2, null),
      commandMessage(3, 1, "publish", 3, null, "fuzz", "live"),
      dataMessage(5, 1, "@setDataFrame", "onMetaData", new Map([["width", 1]])),
      media(1, videoConfig),
      media(1, audioConfig),
      media(1, idr(0)),
      media(1, aac(5)),
      media(1, slice(40)),
    ].map((m) => writer.encode(m));
    const base = concat(parts);
    const rand = prng(99);
    for (let i = 0; i < 30; i++) {
      const bytes = base.slice();
      for (let k = 0; k < 1 + rand() * 6; k++) {
        bytes[Math.floor(rand() * bytes.length)] = rand() * 256;
      }
      const c = await TestClient.open(port);
      await c.handshake();
      await c.write(bytes).catch(() => {});
      await within(c.closed, 5000, `fuzz connection ${i} close`);
      c.close();
    }
    const refusals = log.lines.filter((l) => l.startsWith("warn") && / closed: /.test(l));
    assert.ok(refusals.length > 0, "the fuzzed input should include bad input");
    const [after] = await publisher(port, "after-fuzz");
    assert.ok(registry.get("live", "after-fuzz"));
    after.close();
  });
});

Deno.test("rtmp server: a player that stops reading is evicted; the publisher is not slowed", async () => {
  const registry = new Registry({
    apps: { live: { capacity: 16, gopCapacity: 16 } },
    describeConfig,
  });
  await withServer({ registry, maxLag: 4 }, async (port, registry, log) => {
    const [pub, pid] = await publisher(port, "fast");
    const player = await TestClient.open(port);
    await player.handshake();
    await player.command(await player.connect(), "play", 3, null, "fast");
    assert.equal(statusCode(await player.nextCommand(["onStatus"])), "NetStream.Play.Reset");
    player.pause();
    const big = new Uint8Array(256 * 1024);
    await pub.send(media(pid, videoConfig));
    for (let i = 0; i < 80; i++) {
      await pub.send(media(pid, frame("video", i * 40, i % 10 ? 0 : FrameFlags.KEYFRAME, big)));
    }
    assert.equal(registry.get("live", "fast")?.closed, false);
    player.resume();
    await within(player.closed, 5000, "slow player disconnect");
    await log.waitFor(/player of live\/fast fell too far behind and was evicted/);
    assert.ok(registry.get("live", "fast"), "the publisher goes on");
  });
});

test.x265({
  name: "rtmp server: Enhanced RTMP hvc1 publish and play",
  fn: async () => {
    const ts = await makeFixture("rtmp-hevc.ts", [
      ...testsrc({ duration: 1 }),
      "-c:v",
      "libx265",
      "-x265-params",
      "log-level=error",
      "-f",
      "mpegts",
    ]);
    const file = await Deno.open(ts);
    const frames = await readAll(file.readable.pipeThrough(new TsDemuxer()));
    assert.ok(
      frames.length > 20 && frames[0].codec === "h265" && frames[0].flags === FrameFlags.CONFIG,
    );
    const base = frames[0].dts;
    const sent = frames.map((f) => ({ ...f, pts: f.pts - base, dts: f.dts - base }));

    await withServer({}, async (port, registry) => {
      const pub = await TestClient.open(port);
      await pub.handshake();
      const id = await pub.connect("live", { fourCcList: ["hvc1", "av01"] });
      assert.equal(await pub.publish(id, "hevc"), "NetStream.Publish.Start");
      const sub = registry.get("live", "hevc")!.subscribe();
      for (const f of sent) await pub.send(media(id, f));

      const player = await TestClient.open(port);
      await player.handshake();
      await player.command(await player.connect(), "play", 3, null, "hevc");
      const meta = await player.next((m) =>
        m.typeId === MessageType.DATA_AMF0 && parseData(m.payload)[0] === "onMetaData"
      );
      const info = parseData(meta.payload)[1] as Record<string, unknown>;
      assert.deepEqual([info.videocodecid, info.width], [0x68766331, 320]);
      const first = await player.next((m) => m.typeId === MessageType.VIDEO);
      // IsExHeader, key frame, SequenceStart, "hvc1"
      assert.equal(hex(first.payload.subarray(0, 5)), "9068766331");
      const m = registry.get("live", "hevc")!.metadata();
      assert.match(m.videoCodec ?? "", /^hvc1\.1\.6\.L\d+/);
      assert.deepEqual([m.width, m.height], [320, 240]);
      pub.close();

      const got = await readAll(sub);
      assert.deepEqual(
        got.map((f) => [f.codec, f.flags, f.pts, f.dts, f.data.length]),
        // a sequence header has no composition offset: configs come back with pts = dts
        sent.map((
          f,
        ) => [f.codec, f.flags, f.flags & FrameFlags.CONFIG ? f.dts : f.pts, f.dts, f.data.length]),
      );
      assert.equal(registry.get("live", "hevc"), undefined, "the publish ended");
    });
  },
});

Deno.test("rtmp server: media sent before its sequence header is not published; from the header on, everything is", async () => {
  await withServer({}, async (port, registry) => {
    const [c, id] = await publisher(port, "order");
    const reader = registry.get("live", "order")!.subscribe().getReader();
    const sent = [
      slice(0), // joined mid-GOP: no sequence headers yet
      aac(0),
      idr(40),
      videoConfig,
      audioConfig,
      idr(80),
      aac(90),
      slice(120),
      { ...audioConfig, data: new Uint8Array([0x11, 0x90]) }, // a changed audio config
      aac(130),
    ];
    for (const f of sent) await c.send(media(id, f));
    const got = await within(
      (async () => {
        const out: MediaFrame[] = [];
        while (out.length < 7) out.push((await reader.read()).value!);
        return out;
      })(),
      5000,
      "seven frames",
    );
    reader.releaseLock();
    assert.equal(assertConfigFirst(got, "rtmp"), 4);
    assert.deepEqual(got.map((f) => [f.kind, f.flags, f.dts / 90]), [
      ["video", FrameFlags.CONFIG, 0],
      ["audio", FrameFlags.CONFIG, 0],
      ["video", FrameFlags.KEYFRAME, 80],
      ["audio", FrameFlags.KEYFRAME, 90],
      ["video", FrameFlags.NONE, 120],
      ["audio", FrameFlags.CONFIG, 0],
      ["audio", FrameFlags.KEYFRAME, 130],
    ]);
  });
});
