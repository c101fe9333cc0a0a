/** TsEncoder.redeclare: the program changes between segments without a continuity error. */

import assert from "node:assert/strict";
import { FrameFlags } from "../../../mod.ts";
import { TsEncoder, TsPid } from "../../../media/ts/mod.ts";
import { concat } from "../../_util/bytes.ts";
import { audio, audioConfig, video, videoConfig } from "../hls/_synthetic.ts";
import { demux, packets } from "./_helpers.ts";

Deno.test("TsEncoder.redeclare: a track added, then dropped, keeps PIDs and continuity counters; each program has a new PMT version", () => {
  const enc = new TsEncoder({ video: "h264", audio: null });
  const chunks: Uint8Array[] = [];
  const push = (out: Uint8Array | undefined) => void (out && chunks.push(out.slice()));
  push(enc.encode(videoConfig()));
  for (let i = 0; i < 5; i++) push(enc.encode(video(i * 3600, i === 0)));
  enc.redeclare("h264", "aac"); // an audio track appears
  push(enc.encode(audioConfig()));
  for (let i = 5; i < 10; i++) {
    push(enc.encode(video(i * 3600, i === 5)));
    push(enc.encode(audio(i * 3600)));
  }
  enc.redeclare("h264", null); // and goes again
  for (let i = 10; i < 12; i++) push(enc.encode(video(i * 3600, i === 10)));
  const bytes = concat(chunks);
  const list = packets(bytes);
  for (const pid of [TsPid.PAT, TsPid.PMT, TsPid.VIDEO, TsPid.AUDIO]) {
    const ccs = list.filter((p) => p.pid === pid && p.hasPayload).map((p) => p.cc);
    assert.ok(ccs.length > 0, `pid ${pid}`);
    for (let i = 1; i < ccs.length; i++) assert.equal(ccs[i], (ccs[i - 1] + 1) & 15, `pid ${pid}`);
  }
  // version_number: bits 5..1 of the byte after section_length and program_number
  const versions = list.filter((p) => p.pid === TsPid.PMT && p.unitStart).map((p) =>
    (bytes[p.index * 188 + p.payloadOffset + 1 + 5] >> 1) & 31
  );
  assert.deepEqual([...new Set(versions)], [0, 1, 2]);
  const { frames } = demux(bytes);
  const media = (kind: string) =>
    frames.filter((f) => f.kind === kind && !(f.flags & FrameFlags.CONFIG)).length;
  assert.equal(media("video"), 12);
  assert.equal(media("audio"), 5);
});
