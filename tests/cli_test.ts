/** The command line's listener parsing (cli.ts `parseListen`). */

import assert from "node:assert/strict";
import { parseListen } from "../cli.ts";

Deno.test("parseListen: port, host:port, [v6]:port and off", () => {
  assert.deepEqual(parseListen("1935", "rtmp"), { hostname: "0.0.0.0", port: 1935 });
  assert.deepEqual(parseListen("127.0.0.1:80", "http"), { hostname: "127.0.0.1", port: 80 });
  assert.deepEqual(parseListen("[::1]:8554", "rtsp"), { hostname: "::1", port: 8554 });
  assert.equal(parseListen("off", "srt"), undefined);
  assert.throws(() => parseListen("70000", "srt"), { message: /--srt takes PORT/ });
});
