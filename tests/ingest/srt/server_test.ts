import assert from "node:assert/strict";
import {
  type AuthRequest,
  FrameFlags,
  type MediaFrame,
  type PlayOptions,
  Registry,
  type StreamHandle,
} from "../../../mod.ts";
import {
  ackPacket,
  controlPacket,
  ControlType,
  controlType,
  type Handshake,
  HandshakeExtensionFlag,
  HandshakeType,
  isControl,
  nakPacket,
  parseAck,
  parseNak,
  rejectionReason,
  RejectReason,
  serveSrt,
  shutdownPacket,
  SrtFlag,
  type SrtPassphraseRequest,
  type SrtServer,
  type SrtServerOptions,
} from "../../../ingest/srt/mod.ts";
import { flipBit, prng, randomBytes } from "../../_util/fuzz.ts";
import { decodeCheck, makeFixture, sine, tempPath, testsrc } from "../../_util/ffmpeg.ts";
import { LogLines } from "../../_util/log.ts";
import { firstDifference, hex } from "../../_util/bytes.ts";
import { TsDecoder } from "../../../media/ts/mod.ts";
import { SrtCrypto } from "../../../ingest/srt/_crypto.ts";
import { TestCaller } from "./_client.ts";
import { audioFrame, configFrame } from "../../_util/frames.ts";
import { dataPacket } from "./_engine.ts";
import { testsWith } from "../../_util/tools.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg", "ffprobe"] });

/** 1316 bytes of MPEG-TS null packets. */
const NULLS = (() => {
  const out = new Uint8Array(1316);
  for (let at = 0; at < out.length; at += 188) out.set([0x47, 0x1f, 0xff, 0x10], at);
  return out;
})();

/** A data packet for the listener socket `dest` (MPEG-TS null packets by default). */
function tsPacket(seq: number, dest: number, timestamp = 0, payload = NULLS): Uint8Array {
  const packet = dataPacket(seq, timestamp, payload);
  new DataView(packet.buffer).setUint32(12, dest);
  return packet;
}

const isType = (type: number) => (p: Uint8Array) => isControl(p) && controlType(p) === type;

interface Setup {
  server: SrtServer;
  registry: Registry;
  logs: LogLines;
  callers: TestCaller[];
  caller(): Promise<TestCaller>;
}

async function withServer(
  options: Partial<SrtServerOptions> & { registry?: Registry },
  body: (s: Setup) => Promise<void>,
): Promise<void> {
  const registry = options.registry ?? new Registry();
  const logs = new LogLines();
  const server = await serveSrt({
    hostname: "127.0.0.1",
    port: 0,
    logger: logs,
    ...options,
    registry,
  });
  const callers: TestCaller[] = [];
  const setup: Setup = {
    server,
    registry,
    logs,
    callers,
    caller: async () => {
      const c = await TestCaller.open(server.addr.port);
      callers.push(c);
      return c;
    },
  };
  try {
    await body(setup);
  } finally {
    await server.close();
    await Promise.all(callers.map((c) => c.close()));
  }
}

/** Two seconds of H.264 (one-second GOPs) + AAC in MPEG-TS. */
async function twoSecondClip(): Promise<Uint8Array<ArrayBuffer>> {
  return await Deno.readFile(
    await makeFixture("srt-gap.ts", [
      ...testsrc({ duration: 2 }),
      ...sine({ duration: 2 }),
      ...["-c:v", "libx264", "-g", "25", "-c:a", "aac", "-f", "mpegts"],
    ]),
  );
}

async function until(what: string, test: () => boolean, ms = 3000): Promise<void> {
  const end = performance.now() + ms;
  while (!test()) {
    if (performance.now() > end) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("a publisher: negotiated latencies, ACKs, NAKs, shutdown ends the publish", async () => {
  await withServer({ latencyMs: 200 }, async ({ caller, registry, server, logs }) => {
    const c = await caller();
    const response = await c.connect("publish:live/a", {
      hsreq: { version: 0x010501, flags: 0xbf, receiverLatencyMs: 120, senderLatencyMs: 300 },
    });
    assert.equal(response.type, HandshakeType.CONCLUSION);
    assert.equal(response.version, 5);
    assert.equal(response.isn, c.isn);
    assert.equal(
      response.extensionField & HandshakeExtensionFlag.HSREQ,
      HandshakeExtensionFlag.HSREQ,
    );
    assert.ok(response.socketId > 0);
    const needed = SrtFlag.TSBPDSND | SrtFlag.TSBPDRCV | SrtFlag.TLPKTDROP | SrtFlag.NAKREPORT |
      SrtFlag.REXMITFLG;
    assert.equal((response.hsrsp?.flags ?? 0) & needed, needed);
    // Receiving (our data): max(200, the caller's 300). Sending: max(200, its 120).
    assert.equal(response.hsrsp?.receiverLatencyMs, 300);
    assert.equal(response.hsrsp?.senderLatencyMs, 200);
    const handle = registry.get("live", "a");
    assert.ok(handle);
    assert.equal(handle.metadata().ingestProtocol, "srt");
    await logs.waitFor(/srt 127\.0\.0\.1:\d+: publish live\/a \(socket \d+, latency 300 ms\)/);

    const dest = response.socketId;
    for (let i = 0; i < 3; i++) c.send(tsPacket(c.isn + i, dest, i * 1000));
    const ack = await c.next((p) => isType(ControlType.ACK)(p) && parseAck(p).ackSeq === c.isn + 3);
    assert.equal(new DataView(ack.buffer).getUint32(12), c.socketId, "addressed to our socket");
    c.send(ackPacket({ ackNo: 0, ackSeq: 0 }, 0, dest)); // nonsense to a receiver: ignored
    c.send(tsPacket(c.isn + 5, dest, 5000));
    const nak = await c.next(isType(ControlType.NAK));
    assert.deepEqual(parseNak(nak), [[c.isn + 3, c.isn + 4]]);
    c.send(tsPacket(c.isn + 3, dest, 3000));
    c.send(tsPacket(c.isn + 4, dest, 4000));
    await until("all six delivered", () => server.stats().receive.delivered === 6);

    c.send(shutdownPacket(9000, dest));
    await until("the publish to end", () => registry.get("live", "a") === undefined);
    assert.equal(handle.closed, true);
    await logs.waitFor(/closed live\/a: peer closed the connection \(received 6, lost 2/);
    assert.equal(server.stats().connections, 0);
  });
});

Deno.test("repeated handshakes are answered with the same bytes, once decided", async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const registry = new Registry({ authorize: () => gate.then(() => true) });
  await withServer({ registry }, async ({ caller, server }) => {
    const c = await caller();
    c.send(c.inductionPacket());
    const first = await c.handshake();
    c.send(c.inductionPacket());
    assert.equal((await c.handshake()).cookie, first.cookie);
    const conclusion = c.conclusionPacket(first.cookie, "publish:live/r");
    c.send(conclusion);
    c.send(conclusion);
    assert.equal(await c.receives(isType(ControlType.HANDSHAKE), 200), false, "no answer yet");
    release();
    const answer = await c.next(isType(ControlType.HANDSHAKE));
    c.send(conclusion);
    const again = await c.next(isType(ControlType.HANDSHAKE));
    // The same answer, stamped with the time it is sent.
    const unstamped = (p: Uint8Array) => hex(p.subarray(0, 8)) + hex(p.subarray(12));
    assert.equal(unstamped(again), unstamped(answer));
    assert.ok(new DataView(again.buffer).getUint32(8) >= new DataView(answer.buffer).getUint32(8));
    assert.equal(server.stats().accepted, 1);
    assert.equal(
      await c.receives(isType(ControlType.HANDSHAKE), 200),
      false,
      "one answer per request",
    );

    const d = await caller();
    d.send(d.inductionPacket());
    const cookie = (await d.handshake()).cookie;
    const bad = d.conclusionPacket(cookie, "publish:live/r");
    d.send(bad);
    const rejected = await d.next(isType(ControlType.HANDSHAKE));
    assert.equal(
      rejectionReason(new DataView(rejected.buffer).getUint32(36)),
      RejectReason.CONFLICT,
    );
    d.send(bad);
    assert.equal(hex(await d.next(isType(ControlType.HANDSHAKE))), hex(rejected));
    assert.equal(server.stats().rejected, 1);
  });
});

Deno.test("rejections carry libsrt's codes", async () => {
  const requests: AuthRequest[] = [];
  const registry = new Registry({
    authorize: (r) => {
      requests.push(r);
      return r.stream !== "secret";
    },
  });
  registry.startPublish("live", "busy");
  const cases: [string, string | undefined, Partial<Handshake>, number][] = [
    ["malformed Stream ID", "nonsense", {}, RejectReason.BAD_REQUEST],
    ["no Stream ID", undefined, {}, RejectReason.BAD_REQUEST],
    ["unknown stream", "read:live/missing", {}, RejectReason.NOTFOUND],
    ["unknown app", "publish:nope/x", {}, RejectReason.NOTFOUND],
    ["busy stream", "publish:live/busy", {}, RejectReason.CONFLICT],
    ["not authorized", "#!::r=live/secret,m=publish,u=alice,s=s3cr3t", {}, RejectReason.FORBIDDEN],
    ["bidirectional", "#!::r=live/x,m=bidirectional", {}, RejectReason.BAD_MODE],
    ["file type", "#!::r=live/x,t=file", {}, RejectReason.NOTSUP_MEDIA],
    [
      "encrypted",
      "publish:live/x",
      { encryption: 2, keyMaterial: new Uint8Array(16) },
      RejectReason.UNSECURE,
    ],
    ["HSv4", "publish:live/x", { hsreq: undefined }, RejectReason.VERSION],
    ["file congestion", "publish:live/x", { congestion: "file" }, RejectReason.CONGESTION],
    ["packet filter", "publish:live/x", { filter: "fec,cols:10" }, RejectReason.FILTER],
    ["group", "publish:live/x", { group: new Uint8Array(8) }, RejectReason.GROUP],
    [
      "stream API",
      "publish:live/x",
      {
        hsreq: {
          version: 0x010501,
          flags: 0xbf | SrtFlag.STREAM,
          receiverLatencyMs: 120,
          senderLatencyMs: 120,
        },
      },
      RejectReason.MESSAGEAPI,
    ],
  ];
  await withServer({ registry }, async ({ caller, logs, server }) => {
    for (const [what, streamId, extra, reason] of cases) {
      const c = await caller();
      const answer = await c.connect(streamId, extra);
      assert.equal(answer.type, 1000 + reason, what);
      assert.equal(rejectionReason(answer.type), reason, what);
      assert.equal(answer.hsrsp, undefined, what);
    }
    assert.equal(server.stats().rejected, cases.length);
    assert.equal(server.stats().accepted, 0);
    const secret = requests.find((r) => r.stream === "secret");
    assert.deepEqual(secret, {
      action: "publish",
      app: "live",
      stream: "secret",
      query: "",
      protocol: "srt",
      peer: secret?.peer,
      credentials: { user: "alice", password: "s3cr3t" },
    });
    assert.match(secret?.peer ?? "", /^127\.0\.0\.1:\d+$/);
    await logs.waitFor(/rejected \(11\): the caller encrypts/);
  });
});

Deno.test("too many connections: OVERLOAD", async () => {
  await withServer({ maxConnections: 1 }, async ({ caller }) => {
    assert.equal(
      (await (await caller()).connect("publish:live/one")).type,
      HandshakeType.CONCLUSION,
    );
    const answer = await (await caller()).connect("publish:live/two");
    assert.equal(rejectionReason(answer.type), RejectReason.OVERLOAD);
  });
});

Deno.test("bad cookies, unknown sockets and other addresses are ignored", async () => {
  await withServer({}, async ({ caller, server }) => {
    const c = await caller();
    c.send(c.conclusionPacket(0x12345678, "publish:live/a"));
    assert.equal(await c.receives(isType(ControlType.HANDSHAKE), 300), false);
    const accepted = await c.connect("publish:live/a");
    const intruder = await caller();
    intruder.send(tsPacket(c.isn, accepted.socketId));
    intruder.send(shutdownPacket(0, accepted.socketId));
    intruder.send(tsPacket(c.isn, 12345));
    await until("the packets to be counted", () => server.stats().ignored >= 4);
    assert.equal(server.stats().connections, 1);
    assert.equal(server.stats().receive.received, 0);
  });
});

Deno.test("an induction flood from many ports keeps no state; others still connect", async () => {
  await withServer({}, async ({ caller, server, registry }) => {
    const flood: TestCaller[] = [];
    for (let i = 0; i < 100; i++) flood.push(await caller());
    const cookies = new Set<number>();
    for (let round = 0; round < 5; round++) {
      for (const f of flood) f.send(f.inductionPacket());
      for (const f of flood) cookies.add((await f.handshake()).cookie);
    }
    assert.equal(server.stats().inductions, 500);
    assert.equal(server.stats().connections, 0);
    assert.ok(cookies.size >= 95, `cookies differ per port (${cookies.size})`);
    // Conclusions with good cookies but bad requests are each rejected, and remembered.
    for (const f of flood) f.send(f.conclusionPacket([...cookies][0], "junk"));
    await until("rejections", () => server.stats().rejected + server.stats().ignored >= 100);
    const c = await caller();
    assert.equal((await c.connect("publish:live/after")).type, HandshakeType.CONCLUSION);
    assert.ok(registry.get("live", "after"));
  });
});

Deno.test("a caller that vanishes mid-stream is dropped; another publisher goes on", async () => {
  await withServer({ peerIdleTimeoutMs: 400 }, async ({ caller, registry, logs }) => {
    const a = await caller();
    const b = await caller();
    const ra = await a.connect("publish:live/a");
    const rb = await b.connect("publish:live/b");
    for (let i = 0; i < 3; i++) a.send(tsPacket(a.isn + i, ra.socketId, i * 1000));
    // a goes silent; b keeps sending for 800 ms.
    for (let i = 0; i < 16; i++) {
      b.send(tsPacket(b.isn + i, rb.socketId, i * 50_000));
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(registry.get("live", "a"), undefined);
    assert.ok(registry.get("live", "b"));
    await logs.waitFor(
      /warn srt 127\.0\.0\.1:\d+: closed live\/a: no packet from the peer for 400 ms/,
    );
  });
});

Deno.test("fuzz: random and mutated packets never stop the listener", async () => {
  await withServer({}, async ({ caller, server, registry }) => {
    const c = await caller();
    const accepted = await c.connect("publish:live/fuzz");
    const dest = accepted.socketId;
    const rand = prng(0xf022);
    const seeds = [
      tsPacket(c.isn, dest),
      ackPacket({ ackNo: 1, ackSeq: c.isn }, 0, dest),
      c.inductionPacket(),
      c.conclusionPacket(accepted.cookie, "publish:live/fuzz2"),
      shutdownPacket(0, dest).subarray(0, 16),
    ];
    for (let i = 0; i < 2000; i++) {
      let packet: Uint8Array;
      if (i % 3 === 0) {
        packet = randomBytes(rand, Math.floor(rand() * 100));
        if (rand() < 0.5 && packet.length >= 16) new DataView(packet.buffer).setUint32(12, dest);
      } else {
        const seed = seeds[i % seeds.length];
        packet = flipBit(seed, Math.floor(rand() * seed.length * 8));
        if (seed !== seeds[2] && seed !== seeds[3]) new DataView(packet.buffer).setUint32(12, dest);
      }
      // Never a well-formed shutdown: keep the connection to fuzz it.
      if (isControl(packet) && controlType(packet) === ControlType.SHUTDOWN) continue;
      c.send(packet);
      if (i % 200 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    // Conclusions with good cookies and random fields, for a stream that can be read.
    registry.startPublish("live", "readable");
    const reader = await caller();
    const cookie = (await reader.request(reader.inductionPacket())).cookie;
    const conclusion = reader.conclusionPacket(cookie, "read:live/readable");
    for (let i = 0; i < 300; i++) {
      const mutated = conclusion.slice();
      // Anywhere in version..flow window, or the extensions; the socket id and cookie stay.
      const span = rand() < 0.5 ? [16, 36] : [64, mutated.length];
      const at = span[0] + Math.floor(rand() * (span[1] - span[0]));
      mutated[at] = Math.floor(rand() * 256);
      mutated[40] = i; // a new request each time
      reader.send(mutated);
    }
    const fresh = await caller();
    assert.equal((await fresh.connect("publish:live/after")).type, HandshakeType.CONCLUSION);
    assert.ok(registry.get("live", "after"));
    assert.ok(server.stats().ignored > 0);
    assert.ok(server.stats().rejected + server.stats().accepted > 3);
  });
});

Deno.test("closing the server shuts every connection down and ends publishes", async () => {
  const registry = new Registry();
  const server = await serveSrt({ registry, hostname: "127.0.0.1", port: 0 });
  const c = await TestCaller.open(server.addr.port);
  try {
    const accepted = await c.connect("publish:live/z");
    c.send(tsPacket(c.isn, accepted.socketId));
    await c.next(isType(ControlType.ACK));
    await server.close();
    await server.finished;
    const shutdown = await c.next(isType(ControlType.SHUTDOWN));
    assert.equal(new DataView(shutdown.buffer).getUint32(12), c.socketId);
    assert.equal(registry.get("live", "z"), undefined);
  } finally {
    await server.close();
    await c.close();
  }
});

Deno.test("a reader is kept alive while the stream is silent and shut down when it ends", async () => {
  await withServer({}, async ({ caller, registry }) => {
    const handle = registry.startPublish("live", "r");
    const c = await caller();
    const accepted = await c.connect("read:live/r");
    assert.equal(accepted.type, HandshakeType.CONCLUSION);
    const data = await c.next((p) => !isControl(p), 1000).catch(() => undefined);
    assert.equal(data, undefined, "nothing to send before frames");
    await c.next(isType(ControlType.KEEPALIVE), 3000);
    registry.endPublish(handle);
    await c.next(isType(ControlType.SHUTDOWN), 5000);
  });
});

for (const coalesceMs of [undefined, 40]) {
  Deno.test(`a reader plays paced to the stream's clock, at catchUpSpeed, with coalesceMs ${coalesceMs ?? "0 by default"}`, async () => {
    await withServer({ coalesceMs, catchUpSpeed: 3 }, async ({ caller, registry }) => {
      const handle = registry.startPublish("live", "c");
      const plays: PlayOptions[] = [];
      const play = handle.play.bind(handle);
      handle.play = (sink, options) => {
        plays.push(options ?? {});
        return play(sink, options);
      };
      const c = await caller();
      await c.connect("read:live/c");
      await until("the reader plays", () => handle.readerCount === 1);
      assert.equal(plays.length, 1);
      assert.equal(plays[0].coalesceMs, coalesceMs ?? 0);
      assert.equal(plays[0].catchUpSpeed, 3);
      assert.equal(plays[0].realTime, true);
      registry.endPublish(handle);
    });
  });
}

test.ffmpeg("packets the sender never repairs are skipped at their deadline: DISCONTINUITY, no stall", async () => {
  const clip = await twoSecondClip();
  const frames: MediaFrame[] = [];
  const registry = new Registry({
    observer: { onFrame: (_key, frame) => void frames.push(frame) },
  });
  await withServer({ registry, latencyMs: 120 }, async ({ caller, server }) => {
    const c = await caller();
    const accepted = await c.connect("publish:live/gap");
    const packets = Math.ceil(clip.length / 1316);
    const skipped = new Set([packets >> 1, (packets >> 1) + 1]);
    const start = performance.now();
    for (let i = 0; i < packets; i++) {
      const payload = clip.subarray(i * 1316, Math.min(clip.length, (i + 1) * 1316));
      const timestamp = Math.floor((performance.now() - start) * 1000) + 1000;
      if (!skipped.has(i)) c.send(tsPacket(c.isn + i, accepted.socketId, timestamp, payload));
      if (i % 10 === 9) await new Promise((r) => setTimeout(r, 5));
    }
    // NAKs for the gap go unanswered; the packets after it are delivered at their deadline.
    await until("the gap to be given up", () => server.stats().receive.dropped === 2);
    await c.next(isType(ControlType.NAK));
    assert.equal(server.stats().receive.delivered, packets - 2);
    c.send(shutdownPacket(0, accepted.socketId));
    await until("the publish to end", () => registry.get("live", "gap") === undefined);
    const flagged = frames.filter((f) => f.flags & FrameFlags.DISCONTINUITY);
    assert.ok(flagged.length >= 1, "the frame after the hole is marked");
    const lastVideo = frames.filter((f) => f.kind === "video").at(-1)!;
    const firstVideo = frames.find((f) => f.kind === "video")!;
    assert.ok(lastVideo.pts - firstVideo.pts > 1.8 * 90_000, "frames after the gap kept coming");
  });
});

test.ffmpeg("a reader's NAK flood of whole-window ranges: retransmissions bounded, another publisher flows", async () => {
  const clip = await twoSecondClip();
  const frames: MediaFrame[] = [];
  const decoder = new TsDecoder();
  decoder.decode(clip, (f) => frames.push(f));
  decoder.flush((f) => frames.push(f));
  await withServer({}, async ({ caller, registry, server }) => {
    const handle = registry.startPublish("live", "flood");
    for (const frame of frames) handle.publish(frame);
    const hostile = await caller();
    const reading = await hostile.connect("read:live/flood");
    assert.equal(reading.type, HandshakeType.CONCLUSION);
    const first = await hostile.next((p) => !isControl(p));
    const isn = new DataView(first.buffer).getUint32(0) & 0x7fffffff;
    const everything: [number, number][] = Array.from(
      { length: 180 },
      () => [isn, (isn + 8191) & 0x7fffffff],
    );
    const flood = nakPacket(everything, 0, reading.socketId);
    assert.ok(flood.length <= 1456 + 16);
    const good = await caller();
    const publishing = await good.connect("publish:live/other");
    const start = performance.now();
    const rounds = 40;
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < 10; i++) hostile.send(flood);
      good.send(tsPacket(good.isn + round, publishing.socketId, round * 10_000));
      await new Promise((r) => setTimeout(r, 10));
    }
    await until(
      "the other publisher's packets to be delivered",
      () => server.stats().receive.delivered === rounds,
    );
    const elapsed = (performance.now() - start) / 1000;
    const sent = server.stats().send;
    // 400 NAKs each naming ~1,000 kept packets 180 times over: before, every range in full.
    const bound = sent.sent + 256 + Math.max(500, sent.sent / elapsed) * elapsed;
    assert.ok(sent.retransmitted <= bound, `${sent.retransmitted} retransmissions > ${bound}`);
    assert.ok(sent.retransmitsDeclined > 0);
  });
});

const SECRET = "correct horse battery";

/** A USER control packet (KMREQ = 3) carrying `km` to the listener socket `dest`. */
function kmRequest(km: Uint8Array, dest: number): Uint8Array {
  const out = controlPacket(ControlType.USER, 3, 0, 0, dest, km.length / 4);
  out.set(km, 16);
  return out;
}

Deno.test("encrypted paths: the key material is answered; wrong, missing or unexpected passphrases are refused", async () => {
  const passphrase = (r: SrtPassphraseRequest) => (r.stream.startsWith("enc") ? SECRET : undefined);
  await withServer({ passphrase }, async ({ caller, logs, server }) => {
    const right = await SrtCrypto.create(SECRET, 16);
    const wrong = await SrtCrypto.create("correct horse battery!", 16);
    const c = await caller();
    const accepted = await c.connect("publish:live/enc", { encryption: 2, keyMaterial: right.km });
    assert.equal(accepted.type, HandshakeType.CONCLUSION);
    assert.ok(accepted.extensionField & HandshakeExtensionFlag.KMREQ);
    assert.equal(hex(accepted.keyMaterialResponse!), hex(right.km), "KMRSP echoes KMREQ");
    await logs.waitFor(/publish live\/enc \(socket \d+, latency 120 ms, AES-128\)/);
    const cases: [string, string, Partial<Handshake>, number, RegExp][] = [
      [
        "wrong passphrase",
        "read:live/enc",
        { encryption: 2, keyMaterial: wrong.km },
        RejectReason.BADSECRET,
        /rejected \(10\): wrong passphrase for live\/enc/,
      ],
      [
        "no passphrase",
        "read:live/enc",
        {},
        RejectReason.UNSECURE,
        /rejected \(11\): live\/enc needs a passphrase; the caller sends none/,
      ],
      [
        "a passphrase for a clear stream",
        "publish:live/clear",
        { encryption: 2, keyMaterial: right.km },
        RejectReason.UNSECURE,
        /rejected \(11\): the caller encrypts; live\/clear is served in clear/,
      ],
      [
        "malformed key material",
        "read:live/enc",
        { encryption: 2, keyMaterial: new Uint8Array(16) },
        RejectReason.ROGUE,
        /rejected \(4\): malformed key material/,
      ],
    ];
    for (const [what, streamId, extra, reason, line] of cases) {
      const answer = await (await caller()).connect(streamId, extra);
      assert.equal(rejectionReason(answer.type), reason, what);
      await logs.waitFor(line);
    }
    assert.equal(server.stats().rejected, cases.length);
  });
  await withServer({ passphrase: SECRET, pbkeylen: 32 }, async ({ caller }) => {
    const short = await SrtCrypto.create(SECRET, 16);
    const answer = await (await caller()).connect("publish:live/x", {
      encryption: 2,
      keyMaterial: short.km,
    });
    assert.equal(rejectionReason(answer.type), RejectReason.UNSECURE, "pbkeylen 32 required");
  });
  await assert.rejects(
    serveSrt({ registry: new Registry(), port: 0, passphrase: "short" }),
    /10 to 79 characters/,
  );
});

Deno.test("a malformed or replayed KMREQ closes that connection only; a repeated one is answered", async () => {
  await withServer({ passphrase: SECRET }, async ({ caller, logs, server }) => {
    const open = async (name: string) => {
      const c = await caller();
      const keys = await SrtCrypto.create(SECRET, 16);
      const answer = await c.connect(`publish:live/${name}`, {
        encryption: 2,
        keyMaterial: keys.km,
      });
      assert.equal(answer.type, HandshakeType.CONCLUSION);
      const send = async (seq: number) =>
        c.send(await keys.session.encrypt(tsPacket(c.isn + seq, answer.socketId), 1));
      return { c, keys, dest: answer.socketId, send };
    };
    const [a, b, good] = [await open("a"), await open("b"), await open("good")];
    for (const p of [a, b, good]) await p.send(0);
    await until("three encrypted packets delivered", () => server.stats().receive.delivered === 3);

    // A repeated announcement of the key in use is answered with a KMRSP of the same bytes.
    good.c.send(kmRequest(good.keys.km, good.dest));
    const kmrsp = await good.c.next((p) => isType(ControlType.USER)(p) && p[3] === 4);
    assert.equal(hex(kmrsp.subarray(16)), hex(good.keys.km));

    a.c.send(kmRequest(new Uint8Array(56), a.dest));
    await logs.waitFor(/warn srt .*: closed live\/a: .*malformed key material/);
    // b replays another connection's key material (same passphrase, other salt and key).
    b.c.send(kmRequest(good.keys.km, b.dest));
    await logs.waitFor(
      /warn srt .*: closed live\/b: .*bad key material: key material of another session/,
    );
    await good.send(1);
    await until("the good publisher goes on", () => server.stats().receive.delivered === 4);
    assert.equal(server.stats().connections, 1);
  });
});

test.ffmpeg("a reader catches up from the GOP replay at catchUpSpeed, not in one burst", async () => {
  const frames: MediaFrame[] = [];
  const decoder = new TsDecoder();
  decoder.decode(await twoSecondClip(), (f) => frames.push(f));
  decoder.flush((f) => frames.push(f));
  const catchUpSpeed = 2;
  await withServer({ catchUpSpeed }, async ({ caller, registry }) => {
    // Two seconds published at once: the replay is the second one-second GOP.
    const handle = registry.startPublish("live", "gop");
    for (const frame of frames) handle.publish(frame);
    const replay = handle.replayBuffer().filter((f) => !(f.flags & FrameFlags.CONFIG));
    const gopMs = (replay.at(-1)!.dts - replay[0].dts) / 90;
    assert.ok(gopMs > 800, `a GOP of ${gopMs} ms`);
    const c = await caller();
    await c.connect("read:live/gop");
    const stamps: number[] = [];
    for (;;) {
      const packet = await c.next((p) => !isControl(p), 1500).catch(() => undefined);
      if (!packet) break;
      stamps.push(new DataView(packet.buffer, packet.byteOffset).getUint32(8));
    }
    assert.ok(stamps.length > 10, `${stamps.length} data packets`);
    // A schedule can only run late, so its span is a safe lower bound (a burst spans ~2 ms).
    const spanMs = (stamps.at(-1)! - stamps[0]) / 1000;
    assert.ok(spanMs >= (gopMs / catchUpSpeed) * 0.9, `${spanMs} ms for a ${gopMs} ms GOP`);
    registry.endPublish(handle);
  });
});

/** `seconds` of H.264 (one GOP: a single keyframe) + AAC, demuxed into frames. */
async function oneGop(seconds: number): Promise<MediaFrame[]> {
  const frames: MediaFrame[] = [];
  const decoder = new TsDecoder();
  const clip = await makeFixture(`srt-one-gop-${seconds}.ts`, [
    ...testsrc({ duration: seconds }),
    ...sine({ duration: seconds }),
    ...["-c:v", "libx264", "-g", "1000", "-c:a", "aac", "-f", "mpegts"],
  ]);
  decoder.decode(await Deno.readFile(clip), (f) => frames.push(f));
  decoder.flush((f) => frames.push(f));
  return frames;
}

/** Publish `frames` into `handle` at the pace of their decode times (configs at once). */
async function publishLive(handle: StreamHandle, frames: readonly MediaFrame[]): Promise<void> {
  const startMs = performance.now();
  const firstDts = frames.find((f) => !(f.flags & FrameFlags.CONFIG))!.dts;
  for (const frame of frames) {
    const dueMs = startMs + (frame.dts - firstDts) / 90;
    const wait = dueMs - performance.now();
    if (!(frame.flags & FrameFlags.CONFIG) && wait > 1) {
      await new Promise((r) => setTimeout(r, wait));
    }
    handle.publish(frame);
  }
}

test.ffmpeg("two readers share one muxing: a later reader's MPEG-TS is exactly the tail of the first one's, from a PAT before its keyframe, and ffmpeg decodes it", async () => {
  const frames: MediaFrame[] = [];
  const decoder = new TsDecoder();
  decoder.decode(await twoSecondClip(), (f) => frames.push(f));
  decoder.flush((f) => frames.push(f));
  const second = frames.findLastIndex((f) => f.kind === "video" && f.flags & FrameFlags.KEYFRAME);
  assert.ok(second > 0, "two GOPs");
  await withServer({}, async ({ caller, registry }) => {
    const handle = registry.startPublish("live", "shared");
    for (const frame of frames.slice(0, second)) handle.publish(frame);
    const first = await caller();
    const firstRead = first.readTs((await first.connect("read:live/shared")).socketId);
    await until("the first reader plays", () => handle.readerCount === 1);
    for (const frame of frames.slice(second)) handle.publish(frame);
    const later = await caller();
    const laterRead = later.readTs((await later.connect("read:live/shared")).socketId);
    await until("the second reader plays", () => handle.readerCount === 2);
    registry.endPublish(handle);
    const [a, b] = await Promise.all([firstRead, laterRead]);
    assert.ok(b.ts.length > 0 && b.ts.length < a.ts.length, `${b.ts.length} of ${a.ts.length}`);
    assert.deepEqual([...b.ts.subarray(0, 3)], [0x47, 0x40, 0x00], "the later one opens on a PAT");
    const at = firstDifference(b.ts, a.ts.subarray(a.ts.length - b.ts.length));
    assert.equal(at, -1, `the later reader's bytes differ from the first one's tail at ${at}`);
    const file = await tempPath("srt-later-reader.ts");
    await Deno.writeFile(file, b.ts);
    const check = await decodeCheck(file);
    assert.equal(check.code, 0, check.stderr);
    assert.equal(check.stderr, "");
  });
});

test.ffmpeg("a reader behind its stream by more than maxLag is evicted; the reader at the live edge goes on", async () => {
  const frames = await oneGop(4);
  // A ring of 32 frames (under half a second): the late reader's catch-up from a two-second
  // GOP replay at 1.5× real time lets it fall a ring behind, and with no keyframe to skip
  // to it loses more than maxLag frames.
  const registry = new Registry({ apps: { live: { capacity: 32 } } });
  await withServer({ registry, maxLag: 8 }, async ({ caller, logs }) => {
    const handle = registry.startPublish("live", "lag");
    const live = await caller();
    const liveRead = live.readTs((await live.connect("read:live/lag")).socketId);
    await until("the live reader plays", () => handle.readerCount === 1);
    const half = frames.findIndex((f) => f.dts - frames.at(-1)!.dts > -2 * 90_000);
    await publishLive(handle, frames.slice(0, half));
    const late = await caller();
    const lateRead = late.readTs((await late.connect("read:live/lag")).socketId);
    await publishLive(handle, frames.slice(half));
    const publishEndMs = performance.now();
    registry.endPublish(handle);
    const [a, b] = await Promise.all([liveRead, lateRead]);
    assert.ok(b.shutdownMs < publishEndMs, "the late reader was shut down while the stream ran");
    assert.ok(a.lastDataMs > b.shutdownMs, "the live reader got data after that");
    await logs.waitFor(/reader of live\/lag fell too far behind and was evicted/);
    await logs.waitFor(/closed live\/lag: stream live\/lag ended/);
  });
});

Deno.test("a reader joining an audio-only stream between its table repeats gets the PAT and PMT first, continued by the next ones", async () => {
  await withServer({}, async ({ caller, registry }) => {
    const handle = registry.startPublish("live", "radio");
    const aac = (ms: number): MediaFrame => ({
      ...audioFrame(ms * 90, 64),
      flags: FrameFlags.NONE,
    });
    handle.publish({ ...configFrame("audio"), data: new Uint8Array([0x12, 0x10]) });
    const first = await caller();
    const firstRead = first.readTs((await first.connect("read:live/radio")).socketId);
    await until("the first reader plays", () => handle.readerCount === 1);
    // The muxer probes the first second, then writes tables every 512 ms (every 16th frame):
    // at 1536 ms last before the later reader joins at 1600 ms, next at 2048.
    for (let ms = 0; ms < 1600; ms += 32) handle.publish(aac(ms));
    const later = await caller();
    const laterRead = later.readTs((await later.connect("read:live/radio")).socketId);
    await until("the later reader plays", () => handle.readerCount === 2);
    for (let ms = 1600; ms < 2600; ms += 32) handle.publish(aac(ms));
    registry.endPublish(handle);
    const [, b] = await Promise.all([firstRead, laterRead]);
    const pids = (ts: Uint8Array, pid: number) => {
      const ccs: number[] = [];
      for (let at = 0; at + 188 <= ts.length; at += 188) {
        if ((((ts[at + 1] & 0x1f) << 8) | ts[at + 2]) === pid) ccs.push(ts[at + 3] & 15);
      }
      return ccs;
    };
    assert.deepEqual([...b.ts.subarray(0, 3)], [0x47, 0x40, 0x00], "a PAT first");
    assert.deepEqual([...b.ts.subarray(188, 191)], [0x47, 0x50, 0x00], "then the PMT");
    const pat = pids(b.ts, 0);
    assert.ok(pat.length >= 2, `${pat.length} PATs`);
    assert.equal(pat[1], (pat[0] + 1) & 15, "the next PAT continues the joiner's");
  });
});
