/** Listener settings (`parseListen`): ports, HOST:PORT, [V6]:PORT, objects and off. */

import assert from "node:assert/strict";
import { parseListen } from "../../server/mod.ts";

Deno.test("parseListen: port, host:port, [v6]:port, objects and off", () => {
  assert.deepEqual(parseListen("1935", "rtmp"), { hostname: "0.0.0.0", port: 1935 });
  assert.deepEqual(parseListen(8888, "http"), { hostname: "0.0.0.0", port: 8888 });
  assert.deepEqual(parseListen("127.0.0.1:80", "http"), { hostname: "127.0.0.1", port: 80 });
  assert.deepEqual(parseListen("[::1]:8554", "rtsp"), { hostname: "::1", port: 8554 });
  assert.deepEqual(parseListen({ hostname: "::", port: 0 }, "srt"), { hostname: "::", port: 0 });
  assert.equal(parseListen("off", "srt"), undefined);
  assert.equal(parseListen(false, "srt"), undefined);
  assert.throws(() => parseListen("70000", "--srt"), { message: /--srt takes PORT/ });
  assert.throws(() => parseListen(-1, "srt"), RangeError);
  assert.throws(() => parseListen({ hostname: "x", port: 1.5 }, "srt"), RangeError);
});
