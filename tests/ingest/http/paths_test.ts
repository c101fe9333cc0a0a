import assert from "node:assert/strict";
import { isSafeName, parseStreamPath } from "../../../ingest/http/paths.ts";

Deno.test("stream paths: names that could escape or confuse are refused", () => {
  assert.deepEqual(parseStreamPath("/live/cam.flv"), { app: "live", stream: "cam.flv", rest: "" });
  assert.deepEqual(parseStreamPath("/live/cam/index.m3u8"), {
    app: "live",
    stream: "cam",
    rest: "index.m3u8",
  });
  for (const bad of ["..", ".", ".hidden", "a/b", "a%2fb", "", "x".repeat(201), "a b", "a\\b"]) {
    assert.equal(isSafeName(bad), false, bad);
  }
  assert.equal(parseStreamPath("/../live/x"), undefined);
  assert.equal(parseStreamPath("live/x"), undefined);
  assert.equal(parseStreamPath("/live"), undefined);
});
