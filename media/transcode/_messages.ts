/** What the transcoding worker and its owner say to each other. */

import type { PipeMemory } from "./_pipe.ts";

/** Starts the worker: ffmpeg's arguments (the input is `/in.ts`; the output is appended). */
export interface StartMessage {
  pipe: PipeMemory;
  args: string[];
}

/** What the worker reports. */
export type WorkerMessage =
  | { type: "ready" }
  | { type: "data"; bytes: Uint8Array }
  | { type: "log"; line: string }
  | { type: "done"; code: number }
  | { type: "failed"; reason: string };
