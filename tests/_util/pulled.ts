/**
 * What a pull client delivered, checked by a real decoder: the frames muxed to MPEG-TS with
 * our `TsEncoder`, then decoded by `ffmpeg -v warning -xerror` and listed by ffprobe.
 */

import type { MediaFrame } from "../../mod.ts";
import { TsEncoder } from "../../media/ts/mod.ts";
import { concat } from "./bytes.ts";
import {
  decodeCheck,
  probePackets,
  type ProbeStream,
  tempPath,
  type ToolOutput,
} from "./ffmpeg.ts";

/** How ffmpeg took a pull's frames. */
export interface PulledCheck {
  /** `ffmpeg -xerror` decoding the TS file: code 0 and an empty stderr when clean. */
  decode: ToolOutput;
  /** ffprobe's streams and packets of the file. */
  streams: ProbeStream[];
  /** Where the file is. */
  file: string;
}

/**
 * Mux `frames` (in the bus's contract) to `NAME.ts` and have ffmpeg decode and list it, with
 * `inputArgs` before its `-i` (e.g. a longer `-analyzeduration` for a track that starts late).
 */
export async function checkPulled(
  frames: readonly MediaFrame[],
  name: string,
  inputArgs: readonly string[] = [],
): Promise<PulledCheck> {
  const encoder = new TsEncoder();
  const chunks: Uint8Array[] = [];
  for (const frame of frames) {
    const bytes = encoder.encode(frame);
    if (bytes) chunks.push(bytes.slice());
  }
  const rest = encoder.flush();
  if (rest) chunks.push(rest.slice());
  const file = await tempPath(`${name}.ts`);
  await Deno.writeFile(file, concat(chunks));
  return {
    decode: await decodeCheck(file, inputArgs),
    streams: await probePackets(file, inputArgs),
    file,
  };
}
