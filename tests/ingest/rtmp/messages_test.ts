import assert from "node:assert/strict";
import {
  acknowledgementMessage,
  commandMessage,
  dataMessage,
  parseCommand,
  parseData,
  parseUserControl,
  RtmpError,
  setChunkSizeMessage,
  setPeerBandwidthMessage,
  UserControlEvent,
  userControlMessage,
  windowAckSizeMessage,
} from "../../../ingest/rtmp/mod.ts";
import { hex, unhex } from "../../_util/bytes.ts";
import { prng } from "../../_util/fuzz.ts";

Deno.test("control messages: golden bodies on chunk stream 2, message stream 0", () => {
  const table: [ReturnType<typeof setChunkSizeMessage>, number, string][] = [
    [setChunkSizeMessage(4096), 1, "00001000"],
    [acknowledgementMessage(0x1_0000_0005), 3, "00000005"],
    [windowAckSizeMessage(2_500_000), 5, "002625a0"],
    [setPeerBandwidthMessage(2_500_000, 2), 6, "002625a002"],
    [userControlMessage(UserControlEvent.STREAM_BEGIN, 1), 4, "000000000001"],
    [userControlMessage(UserControlEvent.SET_BUFFER_LENGTH, 1, 3000), 4, "00030000000100000bb8"],
  ];
  for (const [msg, typeId, body] of table) {
    assert.deepEqual([msg.csid, msg.streamId, msg.typeId, hex(msg.payload)], [2, 0, typeId, body]);
  }
  assert.deepEqual(parseUserControl(unhex("00030000000100000bb8")), {
    event: 3,
    value: 1,
    extra: 3000,
  });
  assert.throws(() => parseUserControl(new Uint8Array(3)), RtmpError);
});

Deno.test("command and data messages round-trip through AMF0", () => {
  const msg = commandMessage(3, 1, "publish", 5, null, "cam?k=1", "live");
  assert.equal(msg.typeId, 20);
  // "publish" as an AMF0 string, then the number 5
  assert.equal(hex(msg.payload.subarray(0, 19)), "0200077075626c697368" + "004014000000000000");
  assert.deepEqual(parseCommand(msg.payload), {
    name: "publish",
    transactionId: 5,
    object: null,
    args: ["cam?k=1", "live"],
  });
  const data = dataMessage(5, 1, "onMetaData", new Map([["width", 320]]));
  assert.deepEqual(parseData(data.payload), ["onMetaData", new Map([["width", 320]])]);
  assert.throws(() => parseCommand(dataMessage(3, 0, 1, 2).payload), /without a name/);
});

Deno.test("AMF0 command fuzz: truncated and mutated bodies throw RtmpError only", () => {
  const rand = prng(5);
  const base = commandMessage(3, 0, "connect", 1, {
    app: "live",
    tcUrl: "rtmp://h/live",
    fourCcList: ["hvc1", "av01"],
    when: new Date(0),
  }).payload;
  for (let i = 0; i < 3000; i++) {
    const bytes = base.slice(0, Math.floor(rand() * (base.length + 1)));
    for (let k = 0; k < rand() * 4; k++) bytes[Math.floor(rand() * bytes.length)] = rand() * 256;
    try {
      parseCommand(bytes);
    } catch (e) {
      if (!(e instanceof RtmpError)) throw e;
    }
  }
});
