/** Hostile RTMP peers: resets before accept, announced-but-unsent messages, trickled bytes. */

import assert from "node:assert/strict";
import { FrameFlags, Registry } from "../../../mod.ts";
import {
  acknowledgementMessage,
  type Amf0Object,
  MessageType,
  parseUserControl,
  type RtmpMessage,
  type RtmpServerOptions,
  serveRtmp,
  UserControlEvent,
  userControlMessage,
} from "../../../ingest/rtmp/mod.ts";
import { buildAvcConfig, describeConfig } from "../../../media/codec/mod.ts";
import { encodeVideoTag } from "../../../media/flv/mod.ts";
import { concat, unhex } from "../../_util/bytes.ts";
import { LogLines } from "../../_util/log.ts";
import { resetBurst } from "../../_util/reset.ts";
import { within } from "../../_util/within.ts";
import { statusCode, TestClient } from "./_client.ts";

/** Run `body` against a server with `opts`; every client it opens is closed afterwards. */
async function limited(
  opts: Partial<RtmpServerOptions>,
  body: (port: number, log: LogLines, open: () => Promise<TestClient>) => Promise<void>,
): Promise<void> {
  const log = new LogLines();
  const registry = new Registry({ describeConfig });
  const server = serveRtmp({ hostname: "127.0.0.1", port: 0, logger: log, ...opts, registry });
  const clients: TestClient[] = [];
  const open = async () => {
    const c = await TestClient.open(server.addr.port);
    clients.push(c);
    return c;
  };
  try {
    await body(server.addr.port, log, open);
  } finally {
    for (const c of clients) c.close();
    await server.close();
    await Promise.all(clients.map((c) => c.closed));
  }
}

/** With the chunk size set to `sent`: one chunk of a message announced 8 MiB long on each of 63 chunk streams. */
function amplification(sent: number): Uint8Array {
  const size = new Uint8Array(4);
  new DataView(size.buffer).setUint32(0, sent);
  const parts = [unhex("02 000000 000004 01 00000000"), size];
  const header = unhex("000000 7fffff 09 01000000");
  for (let csid = 3; csid < 66; csid++) {
    parts.push(Uint8Array.from(csid < 64 ? [csid] : [0, csid - 64]), header, new Uint8Array(sent));
  }
  return concat(parts);
}

/** The closing line the server logged for the connection from `c`. */
function closeLine(log: LogLines, c: TestClient): Promise<string> {
  const port = (c.conn.localAddr as Deno.NetAddr).port;
  return log.waitFor(new RegExp(`rtmp 127\\.0\\.0\\.1:${port}: closed: `));
}

/** An H.264 video message on `streamId` at time 0. */
function video(streamId: number, flags: number, data: Uint8Array): RtmpMessage {
  const frame = { track: 0, kind: "video", codec: "h264", pts: 0, dts: 0, flags, data } as const;
  return {
    csid: 6,
    typeId: MessageType.VIDEO,
    streamId,
    timestamp: 0,
    payload: encodeVideoTag(frame),
  };
}

/** A small valid AVC decoder configuration. */
function avcConfig(): Uint8Array {
  const sps = [0x67, 0x42, 0xc0, 0x1e, 0xda, 0x05, 0x07, 0xe4];
  return buildAvcConfig({ sps: [Uint8Array.from(sps)], pps: [unhex("68ce3c80")] });
}

/** Call `tick` every 50 ms until `c` is closed (or 5 s pass, failing). */
async function trickleUntilClosed(c: TestClient, tick: () => Promise<void>): Promise<void> {
  const timer = setInterval(() => void tick().catch(() => {}), 50);
  try {
    await within(c.closed, 5000, "the server closing the connection");
  } finally {
    clearInterval(timer);
  }
}

Deno.test("rtmp limits: a burst of connections reset before accept does not delay the next publisher", async () => {
  await limited({}, async (port, log, open) => {
    await resetBurst(port, 300);
    const c = await open();
    await within(c.handshake(), 5000, "handshake after the burst");
    const id = await c.connect();
    assert.equal(await c.publish(id, "after-burst"), "NetStream.Publish.Start");
    assert.deepEqual(log.lines.filter((l) => /accept failed/.test(l)), []);
  });
});

Deno.test("rtmp limits: announced-but-unsent messages are capped per connection, 64 KiB before connect", async () => {
  await limited({ maxBufferedBytes: 1024 * 1024 }, async (_port, log, open) => {
    const early = await open();
    await early.handshake();
    await early.write(amplification(4096)).catch(() => {});
    await within(early.closed, 5000, "close before connect");
    assert.match(await closeLine(log, early), /warn .*over the limit of 65536/);

    const late = await open();
    await late.handshake();
    await late.connect();
    await late.write(amplification(32 * 1024)).catch(() => {});
    await within(late.closed, 5000, "close after connect");
    assert.match(await closeLine(log, late), /warn .*over the limit of 1048576/);
  });
});

Deno.test("rtmp limits: each state has a deadline that trickled bytes and control messages do not extend", async () => {
  const opts = { connectTimeoutMs: 300, commandTimeoutMs: 300, idleTimeoutMs: 300 };
  await limited(opts, async (_port, log, open) => {
    // One byte at a time of a valid connect command, after the handshake.
    const trickler = await open();
    await trickler.handshake();
    let at = 0;
    const connect = trickler.writer.encode({
      csid: 3,
      typeId: MessageType.COMMAND_AMF0,
      streamId: 0,
      timestamp: 0,
      payload: new Uint8Array(4000),
    });
    await trickleUntilClosed(trickler, () => trickler.write(connect.subarray(at, ++at)));
    assert.match(await closeLine(log, trickler), /no connect within 300 ms of the handshake/);

    // Connected, then only acknowledgements.
    const idler = await open();
    await idler.handshake();
    await idler.connect();
    await trickleUntilClosed(idler, () => idler.send(acknowledgementMessage(1)));
    assert.match(await closeLine(log, idler), /no publish or play within 300 ms of connect/);

    // Publishing, then only acknowledgements (nothing on its stream).
    const mute = await open();
    await mute.handshake();
    const id = await mute.connect();
    assert.equal(await mute.publish(id, "mute"), "NetStream.Publish.Start");
    await trickleUntilClosed(mute, () => mute.send(acknowledgementMessage(1)));
    assert.match(await closeLine(log, mute), /publisher sent no message on its stream for 300 ms/);
  });
});

Deno.test("rtmp limits: a player that takes no bytes is closed after idleTimeoutMs", async () => {
  await limited({ idleTimeoutMs: 300, maxLag: 1e9 }, async (_port, log, open) => {
    const pub = await open();
    await pub.handshake();
    const pid = await pub.connect();
    assert.equal(await pub.publish(pid, "busy"), "NetStream.Publish.Start");
    const player = await open();
    await player.handshake();
    await player.command(await player.connect(), "play", 3, null, "busy");
    assert.equal(statusCode(await player.nextCommand(["onStatus"])), "NetStream.Play.Reset");
    player.pause(); // the client stops reading, so only the log tells it was closed
    const video = (flags: number, data: Uint8Array): RtmpMessage => ({
      csid: 6,
      typeId: MessageType.VIDEO,
      streamId: pid,
      timestamp: 0,
      payload: encodeVideoTag({
        track: 0,
        kind: "video",
        codec: "h264",
        pts: 0,
        dts: 0,
        flags,
        data,
      }),
    });
    const sps = [0x67, 0x42, 0xc0, 0x1e, 0xda, 0x05, 0x07, 0xe4];
    await pub.send(
      video(
        FrameFlags.CONFIG,
        buildAvcConfig({ sps: [Uint8Array.from(sps)], pps: [unhex("68ce3c80")] }),
      ),
    );
    const idr = new Uint8Array(256 * 1024);
    new DataView(idr.buffer).setUint32(0, idr.length - 4);
    idr[4] = 0x65;
    const sending = setInterval(
      () => void pub.send(video(FrameFlags.KEYFRAME, idr)).catch(() => {}),
      50,
    );
    try {
      assert.match(await log.waitFor(/player took no bytes/), /player took no bytes for 300 ms/);
    } finally {
      clearInterval(sending);
    }
    player.resume();
  });
});

Deno.test("rtmp limits: maxConnectionsPerIp closes extra connections with a log line", async () => {
  await limited({ maxConnectionsPerIp: 1 }, async (_port, log, open) => {
    const first = await open();
    await first.handshake();
    const second = await open();
    await within(second.closed, 5000, "the extra connection closing");
    assert.match(
      await log.waitFor(/refused a connection/),
      /warn rtmp: refused a connection from "127\.0\.0\.1": 1 connections from that address already \(limit 1\)/,
    );
  });
});

/** A publisher of `name` that has sent an H.264 config and one keyframe, and a player of it. */
async function playing(
  open: () => Promise<TestClient>,
  name: string,
): Promise<{ pub: TestClient; player: TestClient; playId: number }> {
  const pub = await open();
  await pub.handshake();
  const pid = await pub.connect();
  assert.equal(await pub.publish(pid, name), "NetStream.Publish.Start");
  await pub.send(video(pid, FrameFlags.CONFIG, avcConfig()));
  await pub.send(video(pid, FrameFlags.KEYFRAME, unhex("00000002 6588")));
  const player = await open();
  await player.handshake();
  const playId = await player.connect();
  await player.command(playId, "play", 3, null, name);
  // The keyframe arrives: the player plays (and reads into its small buffer from now on).
  await player.next((m) =>
    m.typeId === MessageType.VIDEO && m.payload[0] === 0x17 && m.payload[1] === 1
  );
  return { pub, player, playId };
}

Deno.test("rtmp limits: a player silent for a while then sending more than its small read buffer is answered", async () => {
  await limited({}, async (_port, _log, open) => {
    const { player } = await playing(open, "quiet");
    await new Promise((resolve) => setTimeout(resolve, 300));
    // 2 KB in one command (read 64 bytes, then 4 KiB at a time), then a ping request.
    await player.command(0, "noSuchCommand", 7, null, "x".repeat(2000));
    await player.send(userControlMessage(UserControlEvent.PING_REQUEST, 1234));
    const error = await player.nextCommand(["_error"]);
    assert.equal(error.transactionId, 7);
    assert.equal((error.args[0] as Amf0Object).code, "NetConnection.Call.Failed");
    const pong = await player.next((m) =>
      m.typeId === MessageType.USER_CONTROL &&
      parseUserControl(m.payload).event === UserControlEvent.PING_RESPONSE
    );
    assert.equal(parseUserControl(pong.payload).value, 1234);
  });
});

Deno.test("rtmp limits: a player may hold at most 64 KiB of incomplete messages", async () => {
  // The server's cap after connect is 16 MiB; 63 messages of 16 KiB each are within it.
  await limited({}, async (_port, log, open) => {
    const { pub, player } = await playing(open, "hoarder");
    await player.write(amplification(16 * 1024)).catch(() => {});
    await within(player.closed, 5000, "the player's close");
    assert.match(await closeLine(log, player), /warn .*over the limit of 65536/);
    // The publisher goes on.
    await pub.command(0, "releaseStream", 9, null, "hoarder");
    assert.equal((await pub.nextCommand(["_result"])).transactionId, 9);
  });
});
