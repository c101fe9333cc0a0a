import assert from "node:assert/strict";
import {
  ChunkReader,
  ChunkWriter,
  MessageType,
  RtmpError,
  type RtmpMessage,
} from "../../../ingest/rtmp/mod.ts";
import { concat } from "../../_util/bytes.ts";
import { hex, unhex } from "../../_util/bytes.ts";
import { prng } from "../../_util/fuzz.ts";

function msg(
  csid: number,
  typeId: number,
  streamId: number,
  timestamp: number,
  payload: number[] | Uint8Array,
): RtmpMessage {
  return { csid, typeId, streamId, timestamp, payload: Uint8Array.from(payload) };
}

interface Case {
  name: string;
  chunkSize: number;
  /** Messages written in order by one writer; each with the golden bytes it must produce. */
  steps: { message: RtmpMessage; bytes: string }[];
}

// Golden bytes: basic header | timestamp(3) | length(3) | type(1) | stream id(4, LE) | ext ts | data
const cases: Case[] = [
  {
    name: "type 0, one chunk",
    chunkSize: 128,
    steps: [{ message: msg(3, 20, 0, 0, [1, 2, 3]), bytes: "03 000000 000003 14 00000000 010203" }],
  },
  {
    name: "types 0, 1, 2, 3 on one chunk stream",
    chunkSize: 128,
    steps: [
      { message: msg(4, 9, 1, 1000, [0xaa, 0xbb]), bytes: "04 0003e8 000002 09 01000000 aabb" },
      { message: msg(4, 9, 1, 1040, [1, 2, 3]), bytes: "44 000028 000003 09 010203" },
      { message: msg(4, 9, 1, 1060, [4, 5, 6]), bytes: "84 000014 040506" },
      { message: msg(4, 9, 1, 1080, [7, 8, 9]), bytes: "c4 070809" },
      { message: msg(4, 8, 1, 1100, [7, 8, 9]), bytes: "44 000014 000003 08 070809" },
    ],
  },
  {
    name: "type 3 right after type 0 uses the type 0 timestamp as delta",
    chunkSize: 128,
    steps: [
      { message: msg(5, 8, 1, 40, [1]), bytes: "05 000028 000001 08 01000000 01" },
      { message: msg(5, 8, 1, 80, [2]), bytes: "c5 02" },
    ],
  },
  {
    name: "a message split into type 3 chunks",
    chunkSize: 4,
    steps: [{
      message: msg(6, 9, 1, 7, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
      bytes: "06 000007 00000a 09 01000000 00010203 c6 04050607 c6 0809",
    }],
  },
  {
    name: "extended timestamp in type 0 and repeated in type 3 chunks",
    chunkSize: 4,
    steps: [{
      message: msg(3, 20, 0, 0x0100_0000, [1, 2, 3, 4, 5, 6]),
      bytes: "03 ffffff 000006 14 00000000 01000000 01020304 c3 01000000 0506",
    }],
  },
  {
    name: "extended delta in type 2, then type 3 repeating it",
    chunkSize: 128,
    steps: [
      { message: msg(7, 8, 1, 0, [1]), bytes: "07 000000 000001 08 01000000 01" },
      { message: msg(7, 8, 1, 0x0100_0000, [2]), bytes: "87 ffffff 01000000 02" },
      { message: msg(7, 8, 1, 0x0200_0000, [3]), bytes: "c7 01000000 03" },
    ],
  },
  {
    name: "two- and three-byte basic headers",
    chunkSize: 128,
    steps: [
      { message: msg(64, 20, 0, 0, [1]), bytes: "00 00 000000 000001 14 00000000 01" },
      { message: msg(319, 20, 0, 0, [1]), bytes: "00 ff 000000 000001 14 00000000 01" },
      { message: msg(320, 20, 0, 0, [1]), bytes: "01 00 01 000000 000001 14 00000000 01" },
      { message: msg(65599, 20, 0, 0, [1]), bytes: "01 ff ff 000000 000001 14 00000000 01" },
    ],
  },
  {
    name: "a new stream id or a timestamp going back needs type 0",
    chunkSize: 128,
    steps: [
      { message: msg(8, 18, 1, 100, [1]), bytes: "08 000064 000001 12 01000000 01" },
      { message: msg(8, 18, 2, 100, [1]), bytes: "08 000064 000001 12 02000000 01" },
      { message: msg(8, 18, 2, 50, [1]), bytes: "08 000032 000001 12 02000000 01" },
    ],
  },
  {
    name: "empty message",
    chunkSize: 128,
    steps: [{ message: msg(3, 20, 1, 5, []), bytes: "03 000005 000000 14 01000000" }],
  },
];

Deno.test("chunk writer produces the golden bytes", () => {
  for (const c of cases) {
    const writer = new ChunkWriter();
    writer.chunkSize = c.chunkSize;
    for (const step of c.steps) {
      assert.equal(hex(writer.encode(step.message)), hex(unhex(step.bytes)), c.name);
    }
  }
});

/** A Set Chunk Size message the reader must see first when the case uses another chunk size. */
function prelude(chunkSize: number): Uint8Array {
  if (chunkSize === 128) return new Uint8Array(0);
  const size = new Uint8Array(4);
  new DataView(size.buffer).setUint32(0, chunkSize);
  return new ChunkWriter().encode(msg(2, MessageType.SET_CHUNK_SIZE, 0, 0, size));
}

Deno.test("chunk reader decodes the golden bytes, whole and byte by byte", () => {
  for (const c of cases) {
    const bytes = [prelude(c.chunkSize), ...c.steps.map((s) => unhex(s.bytes))];
    const whole = new ChunkReader();
    const got = bytes.flatMap((b) => whole.push(b));
    assert.deepEqual(got, c.steps.map((s) => s.message), c.name);
    assert.equal(whole.chunkSize, c.chunkSize);

    const trickle = new ChunkReader();
    const one: RtmpMessage[] = [];
    for (const b of bytes) for (const byte of b) one.push(...trickle.push(new Uint8Array([byte])));
    assert.deepEqual(one, got, `${c.name} byte by byte`);
  }
});

Deno.test("chunk writer and reader round-trip random messages at random chunk sizes", () => {
  const rand = prng(7);
  for (let round = 0; round < 50; round++) {
    const writer = new ChunkWriter();
    const reader = new ChunkReader();
    const chunkSize = 1 + Math.floor(rand() * 300);
    const sizeMsg = new Uint8Array(4);
    new DataView(sizeMsg.buffer).setUint32(0, chunkSize);
    const wire = [writer.encode(msg(2, MessageType.SET_CHUNK_SIZE, 0, 0, sizeMsg))];
    writer.chunkSize = chunkSize;
    const sent: RtmpMessage[] = [];
    const time = [0, 0, 0];
    for (let i = 0; i < 40; i++) {
      const k = Math.floor(rand() * 3);
      time[k] = (time[k] + Math.floor(rand() * (rand() < 0.05 ? 0x2000000 : 100))) >>> 0;
      const payload = new Uint8Array(Math.floor(rand() * 700));
      for (let j = 0; j < payload.length; j++) payload[j] = rand() * 256;
      const m = msg(3 + k * 200, 8 + (k & 1), 1, time[k], payload);
      sent.push(m);
      wire.push(writer.encode(m, rand() < 0.8));
    }
    const all = concat(wire);
    const got: RtmpMessage[] = [];
    for (let o = 0; o < all.length;) {
      const n = 1 + Math.floor(rand() * 500);
      got.push(...reader.push(all.subarray(o, o + n)));
      o += n;
    }
    assert.deepEqual(got, sent);
    assert.equal(reader.bytesReceived, all.length);
  }
});

Deno.test("chunk reader reassembles interleaved messages", () => {
  const writer = new ChunkWriter();
  writer.chunkSize = 4;
  const video = writer.encode(msg(6, 9, 1, 0, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
  const audio = writer.encode(msg(4, 8, 1, 0, [0xa1, 0xa2]));
  // video: 12-byte first chunk header + 4, then (1 + 4), then (1 + 2)
  const reader = new ChunkReader();
  reader.push(prelude(4));
  const got = [
    ...reader.push(video.subarray(0, 16)),
    ...reader.push(audio),
    ...reader.push(video.subarray(16)),
  ];
  assert.deepEqual(got.map((m) => [m.csid, hex(m.payload)]), [
    [4, "a1a2"],
    [6, "0102030405060708090a"],
  ]);
});

Deno.test("chunk reader accepts type 3 chunks that omit the repeated extended timestamp", () => {
  const reader = new ChunkReader();
  reader.push(prelude(4));
  const got = reader.push(unhex("03 ffffff 000008 14 00000000 01000000 01020304 c3 05060708"));
  assert.deepEqual(got, [msg(3, 20, 0, 0x0100_0000, [1, 2, 3, 4, 5, 6, 7, 8])]);
  // fewer than four bytes left: the next header's bytes are read ahead and parsed again
  const short = reader.push(unhex(
    "03 ffffff 000006 14 00000000 01000000 01020304 c3 0506" + "03 000001 000001 14 00000000 aa",
  ));
  assert.deepEqual(short, [
    msg(3, 20, 0, 0x0100_0000, [1, 2, 3, 4, 5, 6]),
    msg(3, 20, 0, 1, [0xaa]),
  ]);
});

Deno.test("chunk reader applies Abort Message", () => {
  const reader = new ChunkReader();
  reader.push(prelude(4));
  const got = reader.push(unhex(
    // first chunk of a 10-byte message on csid 6, then Abort(6), then a fresh 1-byte message
    "06 000000 00000a 09 01000000 01020304" +
      "02 000000 000004 02 00000000 00000006" +
      "06 000009 000001 09 01000000 ff",
  ));
  assert.deepEqual(got, [msg(6, 9, 1, 9, [0xff])]);
});

Deno.test("chunk reader rejects protocol violations with RtmpError", () => {
  const bad: [string, string, RegExp][] = [
    ["chunk size 2^31", "02 000000 000004 01 00000000 80000000", /chunk size 2147483648/],
    ["chunk size 0", "02 000000 000004 01 00000000 00000000", /chunk size 0/],
    ["short Set Chunk Size", "02 000000 000002 01 00000000 0001", /too short/],
    ["message beyond the limit", "03 000000 ffffff 09 01000000", /exceeds the limit/],
    ["type 1 first on a chunk stream", "43 000000 000001 09 00", /starts with a type 1/],
    ["type 3 first on a chunk stream", "c3 00", /starts with a type 3/],
    [
      "new header before the message is complete",
      "03 000000 0000ff 09 01000000" + "00".repeat(128) + "43 000000 000001 09",
      /before its message was complete/,
    ],
  ];
  for (const [name, bytes, reason] of bad) {
    assert.throws(() => new ChunkReader().push(unhex(bytes)), (e) => {
      assert.ok(e instanceof RtmpError, name);
      assert.match(e.message, reason, name);
      return true;
    });
  }
  const many = new ChunkReader({ maxChunkStreams: 3 });
  assert.throws(
    () => {
      for (let csid = 3; csid < 10; csid++) {
        many.push(unhex(`0${csid} 000000 000001 09 00000000 00`));
      }
    },
    /more than 3 chunk streams/,
  );
});

Deno.test("chunk reader fuzz: random and mutated input only ever throws RtmpError", () => {
  const rand = prng(1234);
  const writer = new ChunkWriter();
  writer.chunkSize = 16;
  const seed = [
    prelude(16),
    ...Array.from(
      { length: 20 },
      (_, i) => writer.encode(msg(3 + (i % 4), 8 + (i % 2), 1, i * 33, new Uint8Array(i * 7))),
    ),
  ];
  const base = concat(seed);
  let errors = 0;
  for (let iter = 0; iter < 2000; iter++) {
    const input = iter % 2 === 0 ? base.slice() : new Uint8Array(Math.floor(rand() * 2000));
    if (iter % 2 === 0) {
      for (let k = 0; k < 1 + rand() * 8; k++) {
        input[Math.floor(rand() * input.length)] = rand() * 256;
      }
    } else {
      for (let k = 0; k < input.length; k++) input[k] = rand() * 256;
    }
    const reader = new ChunkReader({ maxMessageLength: 64 * 1024 });
    try {
      for (let o = 0; o < input.length; o += 97) {
        for (const m of reader.push(input.subarray(o, o + 97))) {
          assert.ok(m.payload.length <= 64 * 1024);
        }
      }
    } catch (e) {
      if (!(e instanceof RtmpError)) throw e;
      errors++;
    }
  }
  assert.ok(errors > 0, "fuzzing found no invalid input at all");
});

/**
 * The amplification attack: with the chunk size set to `sent`, the first chunk of a
 * message announced 8 MiB long on each of 63 chunk streams.
 */
function announcedButNotSent(sent: number, streams = 63): Uint8Array {
  const size = new Uint8Array(4);
  new DataView(size.buffer).setUint32(0, sent);
  const parts = [new ChunkWriter().encode(msg(2, MessageType.SET_CHUNK_SIZE, 0, 0, size))];
  const header = unhex("000000 7fffff 09 01000000");
  for (let csid = 3; csid < 3 + streams; csid++) {
    const basic = csid < 64 ? [csid] : [0, csid - 64]; // type 0
    parts.push(Uint8Array.from(basic), header, new Uint8Array(sent).fill(csid));
  }
  return concat(parts);
}

Deno.test("chunk reader memory follows the bytes sent, not the lengths announced", () => {
  const sent = 16 * 1024;
  const reader = new ChunkReader({ maxMessageLength: 8 * 1024 * 1024 });
  assert.deepEqual(reader.push(announcedButNotSent(sent)), []);
  // 63 × 8 MiB announced; at most twice what arrived per stream plus 4 KiB each.
  assert.ok(reader.bufferedBytes >= 63 * sent, `${reader.bufferedBytes}`);
  assert.ok(reader.bufferedBytes <= 63 * (2 * sent + 4096), `${reader.bufferedBytes}`);
});

Deno.test("chunk reader refuses to hold more than maxBufferedBytes over all chunk streams", () => {
  const reader = new ChunkReader({ maxBufferedBytes: 1024 * 1024 });
  assert.throws(
    () => reader.push(announcedButNotSent(32 * 1024)),
    (e: unknown) => e instanceof RtmpError && /over the limit of 1048576/.test(e.message),
  );
  // The cap can be raised (a session does so after connect) and completed messages free theirs.
  const raised = new ChunkReader({ maxBufferedBytes: 64 * 1024 });
  raised.maxBufferedBytes = 4 * 1024 * 1024;
  assert.deepEqual(raised.push(announcedButNotSent(32 * 1024)), []);
  const done = new ChunkReader();
  const big = new ChunkWriter().encode(msg(4, 9, 1, 0, new Uint8Array(300_000)));
  assert.equal(done.push(big).length, 1);
  assert.equal(done.bufferedBytes, 0);
});

Deno.test("chunk readers fed cut-off headers in turn each reassemble their own messages", () => {
  // Two readers, their chunk headers (type 0 with an extended timestamp: the longest kind)
  // cut after every byte and pushed alternately: neither sees the other's header bytes.
  const a = new ChunkWriter().encode(msg(3, 20, 1, 0x0100_0000, [1, 2, 3]));
  const b = new ChunkWriter().encode(msg(70, 9, 2, 0x0200_0000, [4, 5]));
  const [ra, rb] = [new ChunkReader(), new ChunkReader()];
  const got: RtmpMessage[][] = [[], []];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (i < a.length) got[0].push(...ra.push(a.subarray(i, i + 1)));
    if (i < b.length) got[1].push(...rb.push(b.subarray(i, i + 1)));
  }
  assert.deepEqual(got, [
    [msg(3, 20, 1, 0x0100_0000, [1, 2, 3])],
    [msg(70, 9, 2, 0x0200_0000, [4, 5])],
  ]);
});

Deno.test("chunk writer: after an uncompressed message the chunk stream's next one is type 0", () => {
  const writer = new ChunkWriter();
  assert.equal(
    hex(writer.encode(msg(4, 9, 1, 10, [1]))),
    hex(unhex("04 00000a 000001 09 01000000 01")),
  );
  assert.equal(hex(writer.encode(msg(4, 9, 1, 20, [2]))), hex(unhex("c4 02")));
  assert.equal(
    hex(writer.encode(msg(4, 9, 1, 30, [3]), false)),
    hex(unhex("04 00001e 000001 09 01000000 03")),
  );
  // Type 0 again: what the peer holds is the uncompressed message's header.
  assert.equal(
    hex(writer.encode(msg(4, 9, 1, 40, [4]))),
    hex(unhex("04 000028 000001 09 01000000 04")),
  );
});
