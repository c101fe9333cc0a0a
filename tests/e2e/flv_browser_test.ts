/**
 * Chromium reads HTTP-FLV the way flv.js and mpegts.js do: a cross-origin `fetch` whose body
 * it reads as a stream. The guard answers the `.flv` request itself (chunked, CORS fields).
 */

import assert from "node:assert/strict";
import { Registry } from "../../mod.ts";
import { httpFlv, serveHttp } from "../../ingest/http/mod.ts";
import { openInChromium, resultCollector } from "../_util/browser.ts";
import { videoFrame } from "../_util/frames.ts";

interface PageResult {
  status: number;
  type: string;
  signature: string;
  bytes: number;
  tags: number;
  error?: string;
}

/** The page: fetch the FLV from the other origin, read it until 20 tags, report. */
function page(flvUrl: string): string {
  return `<!doctype html><script>
(async () => {
  const out = { status: 0, type: "", signature: "", bytes: 0, tags: 0 };
  try {
    const response = await fetch(${JSON.stringify(flvUrl)});
    out.status = response.status;
    out.type = response.headers.get("content-type");
    const reader = response.body.getReader();
    let bytes = new Uint8Array(0);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const joined = new Uint8Array(bytes.length + value.length);
      joined.set(bytes);
      joined.set(value, bytes.length);
      bytes = joined;
      // FLV header (9) and PreviousTagSize0 (4), then tags: 11-byte header, body, 4-byte size.
      let tags = 0;
      for (let o = 13; o + 11 <= bytes.length; tags++) {
        const size = bytes[o + 1] << 16 | bytes[o + 2] << 8 | bytes[o + 3];
        if (o + 11 + size + 4 > bytes.length) break;
        o += 11 + size + 4;
      }
      out.tags = tags;
      if (tags >= 20) break;
    }
    await reader.cancel();
    out.signature = String.fromCharCode(...bytes.subarray(0, 3));
    out.bytes = bytes.length;
  } catch (error) {
    out.error = String(error);
  }
  await fetch("/result", { method: "POST", body: JSON.stringify(out) });
})();
</script>`;
}

Deno.test("http-flv: Chromium reads the stream with a cross-origin fetch", async () => {
  const registry = new Registry();
  const handle = registry.startPublish("live", "web", { protocol: "test" });
  let n = 0;
  handle.publish(videoFrame(0, true, 400));
  const publishing = setInterval(() => {
    n++;
    handle.publish(videoFrame(n * 3600, n % 25 === 0, 400));
  }, 40);
  const flv = serveHttp({ routes: [httpFlv(registry)], hostname: "127.0.0.1", port: 0 });
  const collector = resultCollector(30_000);
  const flvUrl = `http://127.0.0.1:${flv.addr.port}/live/web.flv`;
  const site = serveHttp({
    routes: [
      collector.route,
      (_request, url) =>
        url.pathname === "/"
          ? new Response(page(flvUrl), { headers: { "content-type": "text/html" } })
          : undefined,
    ],
    hostname: "127.0.0.1",
    port: 0,
  });
  const browser = await openInChromium(`http://127.0.0.1:${site.addr.port}/`);
  try {
    const result = await collector.result as PageResult;
    assert.equal(result.error, undefined);
    assert.equal(result.status, 200);
    assert.equal(result.type, "video/x-flv");
    assert.equal(result.signature, "FLV");
    assert.ok(result.tags >= 20, `${result.tags} tags`);
  } finally {
    await browser.close();
    clearInterval(publishing);
    registry.endPublish(handle, "ended");
    await flv.close();
    await site.close();
  }
});
