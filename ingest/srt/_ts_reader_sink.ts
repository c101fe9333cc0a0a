/**
 * An SRT reader's sink on the play line: the stream's shared MPEG-TS, frame by frame, into
 * the connection's sender. The play line paces it (to the stream's clock and, behind the
 * live edge, at the catch-up speed); a batch goes out as it comes.
 */

import type { MediaFrame, PlaySink } from "../../mod.ts";
import type { SrtSender } from "./_sender.ts";
import type { StreamTs } from "./_stream_ts.ts";

/**
 * Writes each frame's shared MPEG-TS packets to one reader's sender. A reader whose first
 * packets do not open on a PAT (a stream without video repeats its tables only every
 * 500 ms) gets the stream's current PAT and PMT before them.
 */
export class TsReaderSink implements PlaySink {
  readonly #sender: SrtSender;
  readonly #ts: StreamTs;
  readonly #clock: () => number;
  /** Whether any MPEG-TS went out yet. */
  #opened = false;

  /** Send `ts`' packets with `sender`, stamped on `clock` (monotonic milliseconds). */
  constructor(sender: SrtSender, ts: StreamTs, clock: () => number) {
    this.#sender = sender;
    this.#ts = ts;
    this.#clock = clock;
  }

  /** {@linkcode PlaySink}: send the batch's packets now. */
  write(frames: readonly MediaFrame[], count: number): void {
    const now = this.#clock();
    for (let i = 0; i < count; i++) {
      const bytes = this.#ts.bytes(frames[i]);
      if (bytes.length === 0) continue;
      if (!this.#opened) {
        // A reader's only bytes of its own: the tables, when its first packets carry none.
        this.#opened = true;
        const tables = startsWithPat(bytes) ? undefined : this.#ts.tables();
        if (tables) this.#sender.write(tables, now);
      }
      this.#sender.write(bytes, now);
    }
  }
}

/** Whether `bytes` open on a PAT packet (PID 0, payload unit start). */
function startsWithPat(bytes: Uint8Array): boolean {
  return bytes[0] === 0x47 && (bytes[1] & 0x5f) === 0x40 && bytes[2] === 0;
}
