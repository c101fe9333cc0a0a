/** Fragmenting test frames with our writer, the way the fMP4 tests need it. */

import assert from "node:assert/strict";
import { Fmp4Fragmenter, trackFromConfig } from "../../../media/fmp4/mod.ts";
import { FrameFlags, type MediaFrame } from "../../../mod.ts";

/** Init segment plus one fragment per GOP (cut before every video keyframe). */
export function fragmentByGop(
  configs: MediaFrame[],
  frames: MediaFrame[],
  timeOffset = 0,
): Uint8Array[] {
  const fragmenter = new Fmp4Fragmenter(configs.map(trackFromConfig), { timeOffset });
  const parts = [fragmenter.initSegment()];
  for (const frame of frames) {
    if (frame.kind === "video" && (frame.flags & FrameFlags.KEYFRAME) && fragmenter.pending > 0) {
      parts.push(fragmenter.flush(frame.dts)!);
    }
    fragmenter.push(frame);
  }
  parts.push(fragmenter.flush()!);
  assert.equal(fragmenter.flush(), undefined);
  return parts;
}
