import assert from "node:assert/strict";
import { redactUrl } from "../../server/redact.ts";

Deno.test("redactUrl hides user info and query; with streamKey, an RTMP URL's stream key", () => {
  assert.equal(
    redactUrl("rtsp://admin:secret@10.0.0.9/stream1?token=x"),
    "rtsp://…@10.0.0.9/stream1?…",
  );
  assert.equal(
    redactUrl("srt://host:9000?streamid=publish:live/a&passphrase=p"),
    "srt://host:9000?…",
  );
  assert.equal(redactUrl("rtmp://host/live/key"), "rtmp://host/live/key", "a pull's name stays");
  for (
    const [url, shown] of [
      ["rtmp://a.example/live2/abcd-1234", "rtmp://a.example/live2/…"],
      ["rtmps://u:p@a.example:443/app/inst/key?x=1", "rtmps://…@a.example:443/app/inst/…?…"],
      ["rtmp://a.example/app", "rtmp://a.example/app"], // no key to hide
      ["srt://a.example:9000/x", "srt://a.example:9000/x"], // not RTMP
    ]
  ) assert.equal(redactUrl(url, { streamKey: true }), shown, url);
});
