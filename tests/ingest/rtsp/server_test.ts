/**
 * The RTSP server against a scripted client: request handling and errors, a publish
 * with synthetic RTP (good and bad packets), a read of it, auth, timeouts and fuzz.
 */

import assert from "node:assert/strict";
import dgram from "node:dgram";
import { FrameFlags, type MediaFrame, Registry } from "../../../mod.ts";
import { type RtspServerOptions, serveRtsp } from "../../../ingest/rtsp/mod.ts";
import {
  H264Depacketizer,
  H264Packetizer,
  RtpPacket,
  writeSenderReport,
} from "../../../media/rtp/mod.ts";
import { buildAvcConfig } from "../../../media/codec/h264.ts";
import { splitAnnexB } from "../../../media/codec/nal.ts";
import { makeFixture, testsrc } from "../../_util/ffmpeg.ts";
import { prng, randomBytes } from "../../_util/fuzz.ts";
import { LogLines } from "../../_util/log.ts";
import { makeCert } from "../../_util/tls.ts";
import { within } from "../../_util/within.ts";
import { RtspClient } from "./_client.ts";
import {
  announceSdp,
  b64,
  BASELINE_PPS,
  BASELINE_SPS,
  syntheticStream,
  videoFrame,
} from "./_util.ts";
import { au, Collect, hex, rtpBytes } from "../../media/rtp/_util.ts";
import { testsWith } from "../../_util/tools.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg", "ffprobe"] });

function serve(registry = new Registry(), extra: Partial<RtspServerOptions> = {}) {
  const log = new LogLines();
  const server = serveRtsp({
    registry,
    hostname: "127.0.0.1",
    port: 0,
    udp: false,
    logger: log,
    ...extra,
  });
  return { server, log, registry, url: `rtsp://127.0.0.1:${server.addr.port}` };
}

/** Ten frames of baseline H.264 (one IDR), as NAL unit lists with SPS and PPS split off. */
async function h264Frames(): Promise<{ sps: Uint8Array; pps: Uint8Array; aus: Uint8Array[][] }> {
  const file = await makeFixture("rtsp-server.h264", [
    ...testsrc({ duration: 0.4, size: "160x120" }),
    "-c:v",
    "libx264",
    "-profile:v",
    "baseline",
    "-x264-params",
    "aud=1",
    "-f",
    "h264",
  ]);
  let sps: Uint8Array | undefined;
  let pps: Uint8Array | undefined;
  const aus: Uint8Array[][] = [];
  for (const nal of splitAnnexB(await Deno.readFile(file))) {
    const type = nal[0] & 0x1f;
    if (type === 9) aus.push([]);
    else if (type === 7) sps = nal;
    else if (type === 8) pps = nal;
    else if (type !== 6) aus.at(-1)!.push(nal);
  }
  return { sps: sps!, pps: pps!, aus };
}

async function collect(frames: MediaFrame[], sub: ReadableStream<MediaFrame>): Promise<void> {
  for await (const f of sub) frames.push(f);
}

test.ffmpeg("rtsp server: a publish over UDP with packets out of order and repeated gets every frame", async () => {
  const { sps, pps, aus } = await h264Frames();
  const { server, registry, url } = serve(new Registry(), { udp: true, rtpPort: 0, rtcpPort: 0 });
  const pub = await RtspClient.open(server.addr.port);
  const rtp = dgram.createSocket("udp4");
  const rtcp = dgram.createSocket("udp4");
  try {
    for (const socket of [rtp, rtcp]) {
      await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
    }
    const headers = { "Content-Type": "application/sdp" };
    assert.equal(
      (await pub.request("ANNOUNCE", `${url}/live/u`, headers, announceSdp(sps, pps))).status,
      200,
    );
    const handle = registry.get("live", "u")!;
    const frames: MediaFrame[] = [];
    const collecting = collect(frames, handle.subscribe());
    const ports = `${rtp.address().port}-${rtcp.address().port}`;
    const setup = await pub.request("SETUP", `${url}/live/u/streamid=0`, {
      Transport: `RTP/AVP;unicast;client_port=${ports};mode=record`,
    });
    assert.equal(setup.status, 200);
    const session = setup.headers.get("session")!.split(";")[0];
    assert.equal((await pub.request("RECORD", `${url}/live/u`, { Session: session })).status, 200);

    const packets: Uint8Array[] = [];
    const packetizer = new H264Packetizer(300);
    let seq = 65530; // across the 16-bit wrap
    for (let i = 0; i < aus.length; i++) {
      const sink = new Collect();
      packetizer.packetize(au(...aus[i]), sink);
      for (const p of sink.packets) {
        packets.push(rtpBytes(seq, 1000 + i * 3600, p.marker, p.payload));
        seq = (seq + 1) & 0xffff;
      }
    }
    // after the first packet, which sets the order, each run of four is sent backwards, and
    // every fifth packet twice
    const sent = [packets[0]];
    for (let i = 1; i < packets.length; i += 4) sent.push(...packets.slice(i, i + 4).reverse());
    const port = server.udp!.rtpPort;
    for (let i = 0; i < sent.length; i++) {
      for (let copy = 0; copy < (i % 5 === 0 ? 2 : 1); copy++) {
        await new Promise<void>((resolve, reject) =>
          rtp.send(sent[i], port, "127.0.0.1", (error) => error ? reject(error) : resolve())
        );
      }
    }
    const deadline = Date.now() + 5000;
    while (frames.length < aus.length + 1 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(
      (await pub.request("TEARDOWN", `${url}/live/u`, { Session: session })).status,
      200,
    );
    await collecting;
    const media = frames.filter((f) => !(f.flags & FrameFlags.CONFIG));
    assert.deepEqual(media.map((f) => hex(f.data)), aus.map((nals) => hex(au(...nals))));
    assert.deepEqual(media.map((f) => f.pts - media[0].pts), aus.map((_, i) => i * 3600));
  } finally {
    rtp.close();
    rtcp.close();
    pub.close();
    await server.close();
  }
});

Deno.test("rtsp server: OPTIONS, CSeq, unknown methods and versions, 404, 454, 455, 459, 461", async () => {
  const { server, log, url } = serve();
  const c = await RtspClient.open(server.addr.port);
  try {
    const options = await c.request("OPTIONS", "*");
    assert.equal(options.status, 200);
    assert.equal(options.headers.get("cseq"), "1");
    assert.match(
      options.headers.get("public")!,
      /DESCRIBE, ANNOUNCE, SETUP, PLAY, RECORD, PAUSE, TEARDOWN, GET_PARAMETER/,
    );
    const noCseq = await c.request("OPTIONS", "*", {}, "", { cseq: false });
    assert.equal(noCseq.status, 400);
    assert.equal(noCseq.headers.get("cseq"), null);
    assert.equal((await c.request("REDIRECT", `${url}/live/x`)).status, 501);
    await c.send("OPTIONS * RTSP/2.0\r\nCSeq: 9\r\n\r\n");
    assert.deepEqual([(await c.reply()).status], [505]);
    assert.equal((await c.request("DESCRIBE", `${url}/live/nothing`)).status, 404);
    assert.equal((await c.request("DESCRIBE", `${url}/nopath`)).status, 404);
    assert.equal((await c.request("PLAY", `${url}/live/x`)).status, 454);
    assert.equal((await c.request("PLAY", `${url}/live/x`, { Session: "12345678" })).status, 454);
    assert.equal((await c.request("SETUP", `${url}/live/x/trackID=0`)).status, 400); // no Transport
    const multicast = await c.request("SETUP", `${url}/live/x/trackID=0`, {
      Transport: "RTP/AVP;multicast;port=5000-5001",
    });
    assert.equal(multicast.status, 461);
    const refusals: [string, string, Record<string, string>, string, number][] = [
      ["SETUP", "x/trackID=0", { Transport: "RTP/AVP;unicast;client_port=5000-5001" }, "", 461],
      ["ANNOUNCE", "x", { "Content-Type": "text/plain" }, "hi", 415],
      ["ANNOUNCE", "x", { "Content-Type": "application/sdp" }, "hello", 400],
      [
        "ANNOUNCE",
        "x",
        { "Content-Type": "application/sdp" },
        "v=0\r\nm=audio 0 RTP/AVP 0\r\n",
        415,
      ],
    ];
    for (const [method, path, headers, body, status] of refusals) {
      const reply = await c.request(method, `${url}/live/${path}`, headers, body);
      assert.equal(reply.status, status, `${method} ${path} ${body}`);
    }
    assert.equal((await c.request("GET_PARAMETER", `${url}/live/x`)).status, 200);
    assert.equal((await c.request("OPTIONS", "*")).status, 200, "the connection is still usable");
    assert.ok(
      log.lines.some((l) => /DESCRIBE refused with 404: stream live\/nothing not found/.test(l)),
    );
  } finally {
    c.close();
    await server.close();
  }
});

Deno.test("rtsp server: header floods and absurd Content-Length close the connection", async () => {
  const { server, log } = serve();
  try {
    for (
      const [bytes, status] of [
        ["OPTIONS * RTSP/1.0\r\n" + "X-Flood: 1\r\n".repeat(200) + "\r\n", 400],
        ["OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX: " + "a".repeat(20000), 400],
        [
          "ANNOUNCE rtsp://h/live/x RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 999999999999\r\n\r\n",
          413,
        ],
        ["\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400], // a TLS hello
      ] as const
    ) {
      const c = await RtspClient.open(server.addr.port);
      await c.send(bytes);
      assert.equal((await c.reply()).status, status);
      await c.closed;
    }
    assert.equal(log.lines.filter((l) => /closed: bad request: /.test(l)).length, 4);
    const c = await RtspClient.open(server.addr.port);
    assert.equal((await c.request("OPTIONS", "*")).status, 200);
    c.close();
  } finally {
    await server.close();
  }
});

test.ffmpeg("rtsp server: publish over TCP with good and bad packets, then a reader gets it", async () => {
  const { sps, pps, aus } = await h264Frames();
  const { server, registry, log, url } = serve();
  const pub = await RtspClient.open(server.addr.port);
  const reader = await RtspClient.open(server.addr.port);
  try {
    const announce = await pub.request(
      "ANNOUNCE",
      `${url}/live/cam`,
      { "Content-Type": "application/sdp" },
      announceSdp(sps, pps),
    );
    assert.equal(announce.status, 200);
    const handle = registry.get("live", "cam")!;
    const frames: MediaFrame[] = [];
    const collecting = collect(frames, handle.subscribe());
    const setup = await pub.request("SETUP", `${url}/live/cam/streamid=0`, {
      Transport: "RTP/AVP/TCP;unicast;interleaved=0-1;mode=record",
    });
    assert.equal(setup.status, 200);
    assert.equal(setup.headers.get("transport"), "RTP/AVP/TCP;unicast;interleaved=0-1;mode=record");
    const session = setup.headers.get("session")!.split(";")[0];
    assert.match(setup.headers.get("session")!, /^[0-9a-f]{16};timeout=60$/);
    // the PCMU track cannot be carried, but SETUP succeeds and its packets are dropped
    const audio = await pub.request("SETUP", `${url}/live/cam/streamid=1`, {
      Transport: "RTP/AVP/TCP;unicast;interleaved=2-3;mode=record",
      Session: session,
    });
    assert.equal(audio.status, 200);
    assert.equal(
      (await pub.request("SETUP", `${url}/live/cam/streamid=9`, {
        Transport: "RTP/AVP/TCP;unicast;interleaved=4-5",
        Session: session,
      })).status,
      404,
    );
    assert.equal(
      (await pub.request("RECORD", `${url}/live/cam`, { Session: session })).status,
      200,
    );

    const sr = new Uint8Array(28);
    writeSenderReport(sr, 0, {
      ssrc: 7,
      ntpSeconds: 3.9e9,
      rtpTimestamp: 1000,
      packetCount: 0,
      octetCount: 0,
    });
    await pub.interleave(1, sr);
    const packetizer = new H264Packetizer(300);
    let seq = 40000;
    for (let i = 0; i < aus.length; i++) {
      const sink = new Collect();
      packetizer.packetize(au(...aus[i]), sink);
      for (const p of sink.packets) {
        await pub.interleave(0, rtpBytes(seq++, 1000 + i * 3600, p.marker, p.payload));
      }
      if (i === 3) {
        // bad input between good frames: fragments without start, a truncated STAP-A,
        // a wrong payload type, not RTP at all, an unknown channel, malformed RTCP
        await pub.interleave(0, rtpBytes(seq++, 999_999, true, Uint8Array.of(0x7c, 0x05, 1, 2)));
        await pub.interleave(0, rtpBytes(seq++, 999_999, true, Uint8Array.of(0x78, 0, 9, 0x67)));
        await pub.interleave(0, rtpBytes(seq++, 999_999, true, Uint8Array.of(0x65), 33));
        await pub.interleave(0, Uint8Array.of(1, 2, 3));
        await pub.interleave(9, Uint8Array.of(0x80, 0x60, 0, 0));
        await pub.interleave(1, Uint8Array.of(0x80, 0xc8, 0, 9));
        await pub.interleave(2, rtpBytes(1, 0, true, Uint8Array.of(0xff), 0)); // the PCMU track
      }
    }
    // reader: DESCRIBE, SETUP, PLAY while the publish is live
    const describe = await reader.request("DESCRIBE", `${url}/live/cam`, {
      Accept: "application/sdp",
    });
    assert.equal(describe.status, 200);
    assert.equal(describe.headers.get("content-base"), `${url}/live/cam/`);
    assert.equal(describe.headers.get("content-type"), "application/sdp");
    assert.match(describe.body, /m=video 0 RTP\/AVP 96\r\na=rtpmap:96 H264\/90000\r\n/);
    assert.match(
      describe.body,
      new RegExp(`sprop-parameter-sets=${b64(sps).replace(/[+]/g, "\\+")},`),
    );
    assert.match(describe.body, /a=control:trackID=0/);
    const rsetup = await reader.request("SETUP", `${url}/live/cam/trackID=0`, {
      Transport: "RTP/AVP/TCP;unicast;interleaved=0-1",
    });
    assert.equal(rsetup.status, 200);
    assert.match(
      rsetup.headers.get("transport")!,
      /^RTP\/AVP\/TCP;unicast;interleaved=0-1;ssrc=[0-9A-F]{8}$/,
    );
    const rsession = rsetup.headers.get("session")!.split(";")[0];
    const play = await reader.request("PLAY", `${url}/live/cam/`, {
      Session: rsession,
      Range: "npt=0.000-",
    });
    assert.equal(play.status, 200);
    assert.match(
      play.headers.get("rtp-info")!,
      new RegExp(`^url=${url}/live/cam/trackID=0;seq=\\d+;rtptime=\\d+$`),
    );
    // the reader gets the cached GOP from the keyframe, first a sender report
    await reader.waitFrames((f) => f.filter((x) => x.channel === 0).length >= 5);
    assert.equal(reader.frames[0].channel, 1);
    assert.equal(reader.frames[0].data[1], 200);

    assert.equal(
      (await pub.request("TEARDOWN", `${url}/live/cam`, { Session: session })).status,
      200,
    );
    await collecting;
    // the reader is told the stream ended (RTCP BYE), and its session closes
    await reader.waitFrames((f) => f.some((x) => x.channel === 1 && x.data[9] === 203));

    assert.equal(frames[0].flags, FrameFlags.CONFIG);
    assert.deepEqual(hex(frames[0].data), hex(buildAvcConfig({ sps: [sps], pps: [pps] })));
    const media = frames.slice(1);
    assert.deepEqual(media.map((f) => hex(f.data)), aus.map((nals) => hex(au(...nals))));
    assert.deepEqual(media.map((f) => f.pts - media[0].pts), aus.map((_, i) => i * 3600));
    assert.ok(media.every((f) => f.dts === f.pts && f.kind === "video" && f.codec === "h264"));
    assert.deepEqual(
      media.map((f) => f.flags),
      aus.map((_, i) => (i === 0 ? FrameFlags.KEYFRAME : 0)),
    );
    assert.deepEqual(handle.metadata().width, 160);
    assert.equal(handle.metadata().videoCodec, `avc1.${hex(sps.subarray(1, 4))}`);

    // what the reader got decodes back to the same access units, the keyframe with the
    // parameter sets in front
    const got: string[] = [];
    const d = new H264Depacketizer((_ts, data) => got.push(hex(data)));
    for (const f of reader.frames) if (f.channel === 0) d.push(new RtpPacket().parse(f.data));
    assert.deepEqual(got, aus.map((nals, i) => hex(au(...(i === 0 ? [sps, pps] : []), ...nals))));

    const stats = server.stats();
    assert.equal(stats.framesPublished, frames.length);
    assert.ok(stats.rtpPacketsDropped >= 6, JSON.stringify(stats));
    assert.equal(stats.rtcpPacketsDropped, 1);
    assert.ok(
      log.lines.some((l) => /track 1 dropped: static payload type 0 is not supported/.test(l)),
    );
  } finally {
    pub.close();
    reader.close();
    await server.close();
  }
});

test.ffmpeg("rtsp server: a second publisher is refused, the first goes on", async () => {
  const { sps, pps } = await h264Frames();
  const { server, registry, url } = serve();
  const first = await RtspClient.open(server.addr.port);
  const second = await RtspClient.open(server.addr.port);
  try {
    const sdp = announceSdp(sps, pps);
    const headers = { "Content-Type": "application/sdp" };
    assert.equal((await first.request("ANNOUNCE", `${url}/live/a`, headers, sdp)).status, 200);
    const refused = await second.request("ANNOUNCE", `${url}/live/a`, headers, sdp);
    assert.deepEqual([refused.status, refused.reason], [400, "Stream Already Published"]);
    assert.equal((await second.request("ANNOUNCE", `${url}/other/a`, headers, sdp)).status, 404);
    assert.ok(registry.get("live", "a"));
    // the server ending a stream (idle reaper, API) disconnects its publisher
    assert.equal((await second.request("ANNOUNCE", `${url}/live/b`, headers, sdp)).status, 200);
    registry.endPublish(registry.get("live", "b")!);
    await second.closed;
    first.close();
    await first.closed;
    for (let i = 0; i < 100 && registry.get("live", "a"); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(registry.get("live", "a"), undefined, "the key is free once the publisher left");
  } finally {
    first.close();
    second.close();
    await server.close();
  }
});

Deno.test("rtsp server: refusals become Basic and Digest challenges with the auth option", async () => {
  const registry = new Registry({
    authorize: (req) => req.credentials?.user === "ann" && req.credentials.password === "pw",
  });
  const handle = syntheticStream(registry, "cam");
  const { server, url } = serve(registry, {
    auth: { realm: "cams", password: (user) => (user === "ann" ? "pw" : undefined) },
  });
  const c = await RtspClient.open(server.addr.port);
  try {
    const challenge = await c.request("DESCRIBE", `${url}/live/cam`);
    assert.equal(challenge.status, 401);
    const www = challenge.headers.get("www-authenticate")!;
    const nonce = /nonce="([0-9a-f]+)"/.exec(www)![1];
    assert.equal(www, `Digest realm="cams", nonce="${nonce}", algorithm="MD5", Basic realm="cams"`);
    const basic = (u: string, p: string) => `Basic ${btoa(`${u}:${p}`)}`;
    assert.equal(
      (await c.request("DESCRIBE", `${url}/live/cam`, { Authorization: basic("ann", "no") }))
        .status,
      401,
    );
    assert.equal(
      (await c.request("DESCRIBE", `${url}/live/cam`, { Authorization: basic("ann", "pw") }))
        .status,
      200,
    );
    // Digest on a fresh connection (its own nonce)
    const d = await RtspClient.open(server.addr.port);
    const n = /nonce="([0-9a-f]+)"/.exec(
      (await d.request("DESCRIBE", `${url}/live/cam`)).headers.get("www-authenticate")!,
    )![1];
    const { createHash } = await import("node:crypto");
    const md5 = (s: string) => createHash("md5").update(s).digest("hex");
    const uri = `${url}/live/cam`;
    const response = md5(`${md5("ann:cams:pw")}:${n}:${md5(`DESCRIBE:${uri}`)}`);
    const digest =
      `Digest username="ann", realm="cams", nonce="${n}", uri="${uri}", response="${response}"`;
    assert.equal((await d.request("DESCRIBE", uri, { Authorization: digest })).status, 200);
    assert.equal(
      (await d.request("DESCRIBE", uri, {
        Authorization: digest.replace(response, "0".repeat(32)),
      })).status,
      200,
      "already authorized on this connection",
    );
    d.close();
    // without the auth option, a refusal is a plain 403
    const plain = serve(registry);
    const p = await RtspClient.open(plain.server.addr.port);
    assert.equal((await p.request("DESCRIBE", `${plain.url}/live/cam`)).status, 403);
    p.close();
    await plain.server.close();
  } finally {
    c.close();
    registry.endPublish(handle);
    await server.close();
  }
});

test.ffmpeg("rtsp server: idle sessions time out and end their publish", async () => {
  const { sps, pps } = await h264Frames();
  const { server, registry, log, url } = serve(new Registry(), { sessionTimeoutMs: 300 });
  const c = await RtspClient.open(server.addr.port);
  try {
    await c.request(
      "ANNOUNCE",
      `${url}/live/idle`,
      { "Content-Type": "application/sdp" },
      announceSdp(sps, pps),
    );
    const setup = await c.request("SETUP", `${url}/live/idle/streamid=0`, {
      Transport: "RTP/AVP/TCP;interleaved=0-1",
    });
    assert.equal(setup.headers.get("session")!.split(";")[1], "timeout=1");
    assert.ok(registry.get("live", "idle"));
    await c.closed;
    assert.equal(registry.get("live", "idle"), undefined);
    assert.ok(log.lines.some((l) => /closed: no request or packet for 300 ms/.test(l)));
  } finally {
    c.close();
    await server.close();
  }
});

test.ffmpeg("rtsp server: bounded fuzz of requests and interleaved data never takes it down", async () => {
  const { sps, pps } = await h264Frames();
  const { server, url } = serve(new Registry(), { sessionTimeoutMs: 2000 });
  const rand = prng(2326);
  const sdp = announceSdp(sps, pps);
  const valid = [
    "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n",
    `DESCRIBE ${url}/live/f RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n`,
    `ANNOUNCE ${url}/live/f RTSP/1.0\r\nCSeq: 3\r\nContent-Type: application/sdp\r\nContent-Length: ${sdp.length}\r\n\r\n${sdp}`,
    `SETUP ${url}/live/f/streamid=0 RTSP/1.0\r\nCSeq: 4\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record\r\n\r\n`,
    `RECORD ${url}/live/f RTSP/1.0\r\nCSeq: 5\r\nSession: 0\r\n\r\n`,
  ].join("");
  try {
    for (let i = 0; i < 60; i++) {
      const c = await RtspClient.open(server.addr.port);
      const bytes = new TextEncoder().encode(valid);
      for (let k = 0; k < 1 + Math.floor(rand() * 6); k++) {
        bytes[Math.floor(rand() * bytes.length)] =
          "$\r\n :;=/0aZ"[Math.floor(rand() * 12)]?.charCodeAt(0) ?? 0;
      }
      await c.send(bytes);
      for (let k = 0; k < 20; k++) {
        const data = randomBytes(rand, Math.floor(rand() * 100));
        if (data.length > 1) data[0] = 0x80 | (data[0] & 0x3f);
        await c.interleave(Math.floor(rand() * 4), data).catch(() => {});
      }
      c.close();
    }
    const c = await RtspClient.open(server.addr.port);
    assert.equal((await c.request("OPTIONS", "*")).status, 200);
    c.close();
  } finally {
    await server.close();
  }
});

async function playSynthetic(c: RtspClient, url: string): Promise<string> {
  assert.equal((await c.request("DESCRIBE", `${url}/live/syn`)).status, 200);
  const setup = await c.request("SETUP", `${url}/live/syn/trackID=0`, {
    Transport: "RTP/AVP/TCP;interleaved=0-1",
  });
  const session = setup.headers.get("session")!.split(";")[0];
  assert.equal((await c.request("PLAY", `${url}/live/syn/`, { Session: session })).status, 200);
  return session;
}

Deno.test("rtsp server: PAUSE then PLAY resumes the same RTP timeline", async () => {
  const { server, registry, url } = serve();
  const handle = syntheticStream(registry);
  const c = await RtspClient.open(server.addr.port);
  const rtpOf = (i: number) =>
    new RtpPacket().parse(c.frames.filter((f) => f.channel === 0)[i].data);
  try {
    const session = await playSynthetic(c, url);
    await c.waitFrames((f) => f.some((x) => x.channel === 0));
    const first = rtpOf(0);
    assert.equal((await c.request("PAUSE", `${url}/live/syn/`, { Session: session })).status, 200);
    handle.publish(videoFrame(3600, 100, true)); // while paused: not sent
    const play = await c.request("PLAY", `${url}/live/syn/`, { Session: session });
    assert.equal(play.status, 200);
    assert.equal(
      play.headers.get("rtp-info"),
      `url=${url}/live/syn/trackID=0;seq=${(first.sequence + 1) & 0xffff}`,
    );
    await c.waitFrames((f) => f.filter((x) => x.channel === 0).length >= 2);
    const resumed = rtpOf(1);
    assert.equal(resumed.sequence, (first.sequence + 1) & 0xffff);
    assert.equal(
      (resumed.timestamp - first.timestamp) >>> 0,
      3600,
      "the replayed keyframe at its own time",
    );
  } finally {
    c.close();
    registry.endPublish(handle);
    await server.close();
  }
});

Deno.test("rtsp server: a player silent since PLAY, then sending a large request with RTCP around it, is answered and plays on", async () => {
  const { server, registry, url } = serve();
  const handle = syntheticStream(registry);
  const c = await RtspClient.open(server.addr.port);
  try {
    const session = await playSynthetic(c, url);
    await c.waitFrames((f) => f.some((x) => x.channel === 0));
    await new Promise((resolve) => setTimeout(resolve, 300)); // silent
    // a receiver report, a 40 KB SET_PARAMETER and another report in one write: far more
    // than a player's small read buffer
    const body = "x: " + "y".repeat(40_000) + "\r\n";
    const rr = Uint8Array.of(0x24, 1, 0, 8, 0x80, 201, 0, 1, 0, 0, 0, 1);
    const head = `SET_PARAMETER ${url}/live/syn/ RTSP/1.0\r\nCSeq: 9\r\nSession: ${session}\r\n` +
      `Content-Type: text/parameters\r\nContent-Length: ${body.length}\r\n\r\n`;
    const request = new TextEncoder().encode(head + body);
    const all = new Uint8Array(rr.length * 2 + request.length);
    all.set(rr);
    all.set(request, rr.length);
    all.set(rr, rr.length + request.length);
    await c.send(all);
    const reply = await c.reply();
    assert.equal(reply.status, 200);
    assert.equal(reply.headers.get("cseq"), "9");
    const before = c.frames.filter((f) => f.channel === 0).length;
    handle.publish(videoFrame(3600, 100));
    await c.waitFrames((f) => f.filter((x) => x.channel === 0).length > before);
  } finally {
    c.close();
    registry.endPublish(handle);
    await server.close();
  }
});

Deno.test("rtsp server: a player's incomplete message is held to the head limit", async () => {
  const { server, registry, log, url } = serve(new Registry(), {
    limits: { maxHeadBytes: 2048 },
  });
  const handle = syntheticStream(registry);
  const c = await RtspClient.open(server.addr.port);
  try {
    await playSynthetic(c, url);
    await c.send(`GET_PARAMETER ${url}/live/syn/ RTSP/1.0\r\nX-Pad: ${"a".repeat(4000)}`);
    const reply = await c.reply();
    assert.equal(reply.status, 400);
    await within(c.closed, 5000, "the close");
    assert.ok(log.lines.some((l) => /message head longer than 2048 bytes/.test(l)));
  } finally {
    c.close();
    registry.endPublish(handle);
    await server.close();
  }
});

Deno.test("rtsp server: a TCP player that stops reading for good is disconnected", async () => {
  const { server, registry, log, url } = serve(new Registry(), { stallTimeoutMs: 500 });
  const handle = syntheticStream(registry);
  const c = await RtspClient.open(server.addr.port);
  try {
    const session = await playSynthetic(c, url);
    c.pause();
    for (let i = 1; i <= 200; i++) handle.publish(videoFrame(i * 3600, 60_000, i % 50 === 0));
    // keep-alives keep the session alive: they are read while their answers queue behind
    // the stuck writes (up to 16 of them, 800 ms)
    const timer = keepAlive(c, `${url}/live/syn`, session);
    try {
      await log.waitFor(/closed: the peer accepted no data for 500 ms/, 5000);
    } finally {
      clearInterval(timer);
    }
    assert.ok(!log.lines.some((l) => /no request or packet/.test(l)));
    assert.equal(handle.closed, false, "the publish goes on");
  } finally {
    c.close();
    registry.endPublish(handle);
    await server.close();
  }
});

/** GET_PARAMETER on `session` every 50 ms, unanswered answers or not; clear to stop. */
function keepAlive(c: RtspClient, uri: string, session: string): ReturnType<typeof setInterval> {
  const request = `GET_PARAMETER ${uri} RTSP/1.0\r\nCSeq: 99\r\nSession: ${session}\r\n\r\n`;
  return setInterval(() => void c.send(request).catch(() => {}), 50);
}

/** ANNOUNCE and SETUP one video track over TCP (interleaved 0-1); returns the session. */
async function announceAndSetup(c: RtspClient, url: string, name: string): Promise<string> {
  const sdp = announceSdp(BASELINE_SPS, BASELINE_PPS);
  const headers = { "Content-Type": "application/sdp" };
  assert.equal((await c.request("ANNOUNCE", `${url}/live/${name}`, headers, sdp)).status, 200);
  const setup = await c.request("SETUP", `${url}/live/${name}/streamid=0`, {
    Transport: "RTP/AVP/TCP;interleaved=0-1;mode=record",
  });
  assert.equal(setup.status, 200);
  return setup.headers.get("session")!.split(";")[0];
}

Deno.test("rtsp server: a silent connection and one dribbling a request head are closed at the request deadline", async () => {
  const { server, log } = serve(new Registry(), { requestTimeoutMs: 300 });
  const silent = await RtspClient.open(server.addr.port);
  const dribbler = await RtspClient.open(server.addr.port);
  const head = "OPTIONS rtsp://127.0.0.1/live/x RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: ";
  let sent = 0;
  const timer = setInterval(
    () => void dribbler.send(head[sent++ % head.length]).catch(() => {}),
    50,
  );
  try {
    await within(Promise.all([silent.closed, dribbler.closed]), 5000, "closing both");
    await log.waitFor(/closed: no request within 300 ms of connecting/);
    assert.equal(log.lines.filter((l) => /no request within 300 ms/.test(l)).length, 2);
  } finally {
    clearInterval(timer);
    silent.close();
    dribbler.close();
    await server.close();
  }
});

Deno.test("rtsp server: a request head, and an interleaved frame, dribbled after a first request are cut off", async () => {
  const { server, log, url } = serve(new Registry(), {
    requestTimeoutMs: 300,
    mediaTimeoutMs: 60_000,
  });
  const head = await RtspClient.open(server.addr.port);
  const frame = await RtspClient.open(server.addr.port);
  const timers: ReturnType<typeof setInterval>[] = [];
  try {
    assert.equal((await head.request("OPTIONS", `${url}/live/x`)).status, 200);
    timers.push(setInterval(() => void head.send("O").catch(() => {}), 50));
    const session = await announceAndSetup(frame, url, "drip");
    assert.equal(
      (await frame.request("RECORD", `${url}/live/drip`, { Session: session })).status,
      200,
    );
    await frame.send(Uint8Array.of(0x24, 0, 0x04, 0x00)); // a 1024-byte frame, sent a byte at a time
    timers.push(setInterval(() => void frame.send(Uint8Array.of(0x80)).catch(() => {}), 50));
    await within(Promise.all([head.closed, frame.closed]), 5000, "closing both");
    const cut = log.lines.filter((l) =>
      /a message not complete within 300 ms of its first byte/.test(l)
    );
    assert.equal(cut.length, 2, log.lines.join("\n"));
  } finally {
    for (const timer of timers) clearInterval(timer);
    head.close();
    frame.close();
    await server.close();
  }
});

Deno.test("rtsp server: a publish that never RECORDs and a read that never PLAYs are closed despite keep-alives", async () => {
  const { server, registry, log, url } = serve(new Registry(), { startTimeoutMs: 300 });
  const handle = syntheticStream(registry);
  const publisher = await RtspClient.open(server.addr.port);
  const reader = await RtspClient.open(server.addr.port);
  const timers: ReturnType<typeof setInterval>[] = [];
  try {
    const published = await announceAndSetup(publisher, url, "squat");
    timers.push(keepAlive(publisher, `${url}/live/squat`, published));
    assert.equal((await reader.request("DESCRIBE", `${url}/live/syn`)).status, 200);
    const setup = await reader.request("SETUP", `${url}/live/syn/trackID=0`, {
      Transport: "RTP/AVP/TCP;interleaved=0-1",
    });
    timers.push(keepAlive(reader, `${url}/live/syn`, setup.headers.get("session")!.split(";")[0]));
    assert.ok(registry.get("live", "squat"));
    await log.waitFor(/closed: no RECORD within 300 ms of its setup/, 5000);
    await log.waitFor(/closed: no PLAY within 300 ms of its setup/, 5000);
    assert.equal(registry.get("live", "squat"), undefined, "the key is free again");
    const again = await RtspClient.open(server.addr.port);
    try {
      await announceAndSetup(again, url, "squat");
    } finally {
      again.close();
    }
  } finally {
    for (const timer of timers) clearInterval(timer);
    publisher.close();
    reader.close();
    registry.endPublish(handle);
    await server.close();
  }
});

Deno.test("rtsp server: a recording publisher that sends no RTP, over TCP or UDP, is closed despite keep-alives", async () => {
  const { server, registry, log, url } = serve(new Registry(), {
    mediaTimeoutMs: 300,
    udp: true,
    rtpPort: 0,
    rtcpPort: 0,
  });
  await server.ready;
  const tcp = await RtspClient.open(server.addr.port);
  const udp = await RtspClient.open(server.addr.port);
  const timers: ReturnType<typeof setInterval>[] = [];
  try {
    const tcpSession = await announceAndSetup(tcp, url, "mute-tcp");
    assert.equal(
      (await tcp.request("RECORD", `${url}/live/mute-tcp`, { Session: tcpSession })).status,
      200,
    );
    timers.push(keepAlive(tcp, `${url}/live/mute-tcp`, tcpSession));
    const sdp = announceSdp(BASELINE_SPS, BASELINE_PPS);
    const headers = { "Content-Type": "application/sdp" };
    assert.equal((await udp.request("ANNOUNCE", `${url}/live/mute-udp`, headers, sdp)).status, 200);
    const setup = await udp.request("SETUP", `${url}/live/mute-udp/streamid=0`, {
      Transport: "RTP/AVP;unicast;client_port=40000-40001;mode=record",
    });
    assert.equal(setup.status, 200);
    const udpSession = setup.headers.get("session")!.split(";")[0];
    assert.equal(
      (await udp.request("RECORD", `${url}/live/mute-udp`, { Session: udpSession })).status,
      200,
    );
    timers.push(keepAlive(udp, `${url}/live/mute-udp`, udpSession));
    await within(
      (async () => {
        while (registry.get("live", "mute-tcp") || registry.get("live", "mute-udp")) {
          await new Promise((r) => setTimeout(r, 20));
        }
      })(),
      5000,
      "ending both publishes",
    );
    const closes = log.lines.filter((l) =>
      /closed: no RTP packet from the publisher for 300 ms/.test(l)
    );
    assert.equal(closes.length, 2, log.lines.join("\n"));
  } finally {
    for (const timer of timers) clearInterval(timer);
    tcp.close();
    udp.close();
    await server.close();
  }
});

Deno.test("rtsp server over TLS: media stays in the TLS connection, a SETUP for UDP is refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "arcly-rtsps-" });
  const { certFile, keyFile, cert } = await makeCert(dir, "rtsps");
  const { sps, pps } = await h264Frames();
  const { server } = serve(new Registry(), {
    port: null,
    tls: { port: 0, certFile, keyFile },
    udp: true,
    rtpPort: 0,
    rtcpPort: 0,
  });
  await server.ready;
  const url = `rtsps://localhost:${server.tlsAddr!.port}`;
  const pub = await RtspClient.openTls(server.tlsAddr!.port, cert);
  try {
    assert.ok(server.udp, "the server has UDP ports for its plain clients");
    const sdp = announceSdp(sps, pps);
    const headers = { "Content-Type": "application/sdp" };
    assert.equal((await pub.request("ANNOUNCE", `${url}/live/s`, headers, sdp)).status, 200);
    const udp = await pub.request("SETUP", `${url}/live/s/streamid=0`, {
      Transport: "RTP/AVP;unicast;client_port=5000-5001;mode=record",
    });
    assert.equal(udp.status, 461);
    const tcp = await pub.request("SETUP", `${url}/live/s/streamid=0`, {
      Transport: "RTP/AVP/TCP;unicast;interleaved=0-1;mode=record",
    });
    assert.equal(tcp.status, 200);
  } finally {
    pub.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
