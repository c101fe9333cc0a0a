/**
 * Streams mirrored between workers (`server/_mirror.ts`), over an in-memory channel that
 * clones each message as postMessage does: the mirror replays the origin's configs and GOP
 * to a late joiner, carries every later frame byte for byte, ends with the origin, and a
 * key live on both sides is settled as the hub says.
 */

import assert from "node:assert/strict";
import { type MediaFrame, Registry } from "../../mod.ts";
import {
  MIRROR_PROTOCOL,
  type MirrorMessage,
  mirrorStream,
  MirrorStreams,
} from "../../server/_mirror.ts";
import { audioFrame, configFrame, videoFrame } from "../_util/frames.ts";
import { LogLines } from "../_util/log.ts";
import { within } from "../_util/within.ts";
import { waitFor } from "../_util/serve.ts";

/** Messages as the receiving worker gets them: cloned, in order, in a later task. */
function channel(receive: (message: MirrorMessage) => void): (message: MirrorMessage) => void {
  const { port1, port2 } = new MessageChannel();
  port2.onmessage = (event) => receive(event.data);
  return (message) => port1.postMessage(message);
}

function describe(frame: MediaFrame): string {
  return `${frame.kind} ${frame.pts} ${frame.flags} ${Array.from(frame.data).join(",")}`;
}

Deno.test("mirror: a late joiner of the mirror gets the origin's configs and GOP, then live frames, byte for byte", async () => {
  const origin = new Registry();
  const mirror = new Registry();
  const log = new LogLines();
  const streams = new MirrorStreams(mirror, log, "refuse");
  const protocols: string[] = [];
  mirror.on("publish", (_handle, info) => protocols.push(info.protocol));
  const replies: MirrorMessage[] = [];
  const post = channel((message) => streams.receive(message, (reply) => replies.push(reply)));
  const handle = origin.startPublish("live", "cam", { protocol: "rtmp", peer: "10.0.0.1:5" });
  const published = [
    configFrame("video"),
    configFrame("audio"),
    videoFrame(0, true, 6),
    audioFrame(100),
    videoFrame(3000, false, 7),
    videoFrame(6000, true, 8), // the current GOP starts here
    audioFrame(6100),
  ];
  published.forEach((frame, i) => {
    frame.data.fill(i + 1);
    handle.publish(frame);
  });
  const sending = mirrorStream(handle, "1", "rtmp", "10.0.0.1:5", post);
  const copy = await waitFor("the mirror", () => mirror.get("live", "cam"), 5000);
  assert.ok(copy, "the mirror is published in the other registry");
  assert.deepEqual(protocols, [MIRROR_PROTOCOL], "published as a mirror, which relays skip");
  assert.equal(copy.metadata().ingestProtocol, "rtmp", "the origin's protocol in the metadata");
  assert.equal(copy.metadata().publisherAddr, "10.0.0.1:5");
  const live = videoFrame(9000, false, 3);
  live.data.fill(9);
  handle.publish(live);
  const expected = [published[0], published[1], published[5], published[6], live].map(describe);
  await waitFor("the live frame", () => copy.replayBuffer().length === 5 || undefined, 5000);
  assert.deepEqual(copy.replayBuffer().map(describe), expected);
  assert.notEqual(copy.replayBuffer()[4].data.buffer, live.data.buffer, "bytes copied, not shared");
  const reader = copy.subscribe({ replay: true }).getReader();
  origin.endPublish(handle);
  await within(sending, 2000, "the mirror's sender to end");
  const read: string[] = [];
  for (;;) {
    const { value, done } = await within(reader.read(), 2000, "a mirrored frame");
    if (done) break;
    read.push(describe(value));
  }
  assert.deepEqual(read, expected, "the replay, then the end with the origin");
  assert.equal(mirror.get("live", "cam"), undefined, "the mirror ended with its origin");
  assert.deepEqual(replies, []);
});

Deno.test("mirror: the hub refuses a key it has live; a worker ends its own publisher for the hub's", () => {
  const log = new LogLines();
  const hub = new Registry();
  const mine = hub.startPublish("live", "a", { protocol: "srt" });
  const hubStreams = new MirrorStreams(hub, log, "refuse");
  const replies: MirrorMessage[] = [];
  const publish: MirrorMessage = {
    type: "publish",
    id: "7",
    app: "live",
    stream: "a",
    protocol: "rtmp",
  };
  assert.equal(hubStreams.receive(publish, (reply) => replies.push(reply)), undefined);
  assert.deepEqual(replies, [{ type: "refused", id: "7" }]);
  assert.equal(hub.get("live", "a"), mine, "the hub's own publisher stays");

  const worker = new Registry();
  const local = worker.startPublish("live", "a", { protocol: "rtmp" });
  const workerStreams = new MirrorStreams(worker, log, "replace");
  const taken = workerStreams.receive(publish, (reply) => replies.push(reply));
  assert.ok(taken);
  assert.ok(local.closed, "the worker's own publisher lost the key");
  assert.equal(worker.get("live", "a"), taken);
  assert.match(log.lines.join("\n"), /live\/a is published on another worker first/);
  assert.equal(replies.length, 1, "nothing refused by the worker");
});

Deno.test("mirror: frames and ends of an unknown or refused publish change nothing; endFrom ends a gone worker's mirrors", () => {
  const log = new LogLines();
  const registry = new Registry();
  const streams = new MirrorStreams(registry, log, "refuse");
  const ignore = () => {};
  streams.receive({ type: "frames", id: "x", frames: [videoFrame(0, true)] }, ignore);
  streams.receive({ type: "unpublish", id: "x", reason: "ended" }, ignore);
  assert.deepEqual(registry.list(), []);
  const a = streams.receive(
    { type: "publish", id: "2/1", app: "live", stream: "a", protocol: "rtmp" },
    ignore,
  );
  const b = streams.receive(
    { type: "publish", id: "3/1", app: "live", stream: "b", protocol: "rtmp" },
    ignore,
  );
  streams.endFrom((id) => id.startsWith("2/"));
  assert.ok(a?.closed, "worker 2's mirror ended");
  assert.equal(b?.closed, false, "worker 3's goes on");
  assert.deepEqual(registry.list().map((handle) => handle.key), ["live/b"]);
});
