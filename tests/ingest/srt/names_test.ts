import assert from "node:assert/strict";
import { Registry } from "../../../mod.ts";
import { rejectionReason, RejectReason, serveSrt } from "../../../ingest/srt/mod.ts";
import { LogLines } from "../../_util/log.ts";
import { TestCaller } from "./_client.ts";

// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x1f\x7f-\x9f]/;

Deno.test("srt names: a Stream ID naming a stream with control characters is rejected with SRT_REJX_BAD_REQUEST; log lines stay one line each", async () => {
  const registry = new Registry();
  const log = new LogLines();
  const server = await serveSrt({ hostname: "127.0.0.1", port: 0, logger: log, registry });
  const callers: TestCaller[] = [];
  try {
    for (
      const streamId of [
        "publish:live/cam\nINFO forged", // refused by the Stream ID parser
        "publish:live/cam\x85forged\x9b2J", // C1 controls: refused by the registry
        "#!::r=live/x,m=publish\x00\x1b[2J", // a mode with controls
      ]
    ) {
      const caller = await TestCaller.open(server.addr.port);
      callers.push(caller);
      const answer = await caller.connect(streamId);
      const expected = streamId.startsWith("#!") ? RejectReason.BAD_MODE : RejectReason.BAD_REQUEST;
      assert.equal(rejectionReason(answer.type), expected, JSON.stringify(streamId));
    }
    assert.equal(registry.list().length, 0);
    assert.equal(server.stats().rejected, 3);
    const c1 = await log.waitFor(/rejected \(1400\).*forged/);
    assert.match(log.lines.join("\n"), /cam\\x85forged\\x9b2J/, c1);
    await log.waitFor(/m=publish\\x00\\x1b\[2J/);
    for (const line of log.lines) assert.doesNotMatch(line, CONTROL, JSON.stringify(line));
  } finally {
    await server.close();
    await Promise.all(callers.map((c) => c.close()));
  }
});
