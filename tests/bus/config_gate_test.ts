import assert from "node:assert/strict";
import { ConfigGate, FrameFlags, type MediaFrame } from "../../mod.ts";
import { audioFrame, configFrame, videoFrame } from "../_util/frames.ts";

Deno.test("ConfigGate: media waits for its track's CONFIG of the same codec; MP3 needs none", () => {
  const gate = new ConfigGate();
  const h265Config: MediaFrame = { ...configFrame("video"), codec: "h265" };
  const h265: MediaFrame = { ...videoFrame(9000, true), codec: "h265" };
  const mp3: MediaFrame = { ...audioFrame(0), track: 2, codec: "mp3" };
  const input: [MediaFrame, boolean][] = [
    [videoFrame(0, true), false],
    [audioFrame(0), false],
    [mp3, true],
    [configFrame("video"), true],
    [videoFrame(3000, false), true],
    [audioFrame(1920), false], // the audio track still has no CONFIG
    [configFrame("audio"), true],
    [audioFrame(3840), true],
    [h265, false], // a codec change waits for its CONFIG
    [h265Config, true],
    [h265, true],
    [videoFrame(12000, true), false], // and the old codec is gone
  ];
  for (const [i, [frame, admitted]] of input.entries()) {
    assert.equal(gate.admit(frame), admitted, `frame ${i}`);
    if (admitted) continue;
    assert.equal(frame.flags & FrameFlags.CONFIG, 0);
  }
  assert.equal(gate.dropped, input.filter(([, a]) => !a).length);
});
