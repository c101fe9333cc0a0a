/**
 * Packaging a file into HLS, streaming: FLV or MPEG-TS (told apart by their first bytes) in,
 * playlists and TS or fMP4 segments out, with memory flat whatever the input's size. This is
 * what `cli.ts package` runs. It loads no kernel runtime and no protocol: only the demuxer
 * the input needs and the HLS packager, so it starts fast.
 *
 * @module
 */

import type { MediaFrame } from "../mod.ts";
import type { HlsPackagerOptions, HlsPackagerStats } from "../media/hls/mod.ts";
import { Progress } from "./_progress.ts";

/** Options for {@linkcode packageFile}. */
export interface PackageOptions
  extends Pick<HlsPackagerOptions, "segmentType" | "targetDuration" | "playlistType"> {
  /** The directory the playlists and segments go to. */
  out: string;
  /** Print a progress line on stderr (default: when stderr is a terminal). */
  progress?: boolean;
}

/** What {@linkcode packageFile} made: the packager's counters, and whether it all went in. */
export interface PackageResult extends HlsPackagerStats {
  /**
   * Set when the input ended early or broke off (the reason): the segments written so far
   * were kept and the playlist closed.
   */
  endedEarly?: string;
}

/** An input {@linkcode packageFile} could not read at all: nothing was written. */
export class PackageError extends Error {
  /** Make an error saying what went wrong with the input. */
  constructor(message: string) {
    super(message);
    this.name = "PackageError";
  }
}

/** Bytes read from the input at a time. */
const READ_CHUNK_SIZE = 256 * 1024;

/**
 * Package `input` (a file path, or `"-"` for stdin) into HLS in `options.out`.
 *
 * @throws {PackageError} when the input cannot be read or is neither FLV nor MPEG-TS.
 * @example
 * ```ts
 * import { packageFile } from "@arcly/stream/server";
 *
 * const result = await packageFile("in.flv", { out: "hls", segmentType: "fmp4" });
 * console.log(`${result.segments} segments, ${result.duration.toFixed(1)} s`);
 * ```
 */
export async function packageFile(input: string, options: PackageOptions): Promise<PackageResult> {
  // The packager's modules load while the input is opened and sniffed.
  const hls = import("../media/hls/mod.ts");
  hls.catch(() => {}); // awaited below
  let file: Deno.FsFile | typeof Deno.stdin = Deno.stdin;
  // A regular file is opened and read synchronously: from the page cache that takes
  // microseconds, while an async call waits for a thread hop (most of the wall time of a 60 s
  // input when every read did).
  let regular = false;
  try {
    if (input !== "-") {
      const opened = Deno.openSync(input);
      file = opened;
      regular = opened.statSync().isFile;
    }
  } catch (error) {
    throw new PackageError(`cannot read ${input}: ${(error as Error).message}`);
  }
  try {
    return await packageInput(file, regular, input, hls, options);
  } finally {
    if (file !== Deno.stdin) file.close();
  }
}

/** Which demuxer reads an input, judged from its first bytes. */
function sniffContainer(head: Uint8Array): "flv" | "ts" | undefined {
  if (head[0] === 0x46 && head[1] === 0x4c && head[2] === 0x56) return "flv";
  if (head[0] === 0x47 && (head.length <= 188 || head[188] === 0x47)) return "ts";
  return undefined;
}

/**
 * Reads `file` (synchronously when `regular`), demuxes it and packages it into `out`.
 * Frames are views into the read buffers; the packager reports each frame it is done with
 * (`onRelease`), and a buffer no frame views any more is read into again, so a long input
 * cycles a few buffers instead of touching fresh memory for every chunk.
 */
async function packageInput(
  file: Deno.FsFile | typeof Deno.stdin,
  regular: boolean,
  input: string,
  hls: Promise<typeof import("../media/hls/mod.ts")>,
  { out, progress: showProgress, ...options }: PackageOptions,
): Promise<PackageResult> {
  /** Read buffers free to be read into again. */
  const spare: Uint8Array[] = [];
  /** Per read buffer in use: the frames viewing it not yet released, plus one while it is decoded. */
  const viewers = new Map<ArrayBufferLike, { chunk: Uint8Array; count: number }>();
  const unview = (buffer: ArrayBufferLike) => {
    const use = viewers.get(buffer);
    if (use === undefined || --use.count > 0) return;
    viewers.delete(buffer);
    spare.push(use.chunk);
  };
  const fill = async (chunk: Uint8Array, from: number) =>
    (regular ? file.readSync(chunk.subarray(from)) : await file.read(chunk.subarray(from))) ?? 0;

  let chunk: Uint8Array = new Uint8Array(READ_CHUNK_SIZE);
  let length = 0;
  try {
    for (let n = 1; length < 189 && n > 0; length += n) n = await fill(chunk, length);
  } catch (error) {
    throw new PackageError(`cannot read ${input}: ${(error as Error).message}`);
  }
  const container = sniffContainer(chunk.subarray(0, length));
  if (!container) {
    throw new PackageError(`${input === "-" ? "stdin" : input} is neither FLV nor MPEG-TS`);
  }
  const frames: MediaFrame[] = [];
  const emit = (frame: MediaFrame) => {
    const use = viewers.get(frame.data.buffer);
    if (use) use.count++;
    frames.push(frame);
  };
  const [demuxer, { DirectoryStorage, HlsPackager }] = await Promise.all([
    container === "flv"
      ? import("../media/flv/mod.ts").then(({ FlvDecoder }) => {
        const decoder = new FlvDecoder();
        return { decode: (c: Uint8Array) => decoder.decode(c, emit), end: () => decoder.flush() };
      })
      : import("../media/ts/mod.ts").then(({ TsDecoder }) => {
        const decoder = new TsDecoder();
        return {
          decode: (c: Uint8Array) => decoder.decode(c, emit),
          end: () => decoder.flush(emit),
        };
      }),
    hls,
  ]);
  const packager = new HlsPackager({
    // Nothing else runs meanwhile: synchronous writes save a thread hop per call.
    storage: new DirectoryStorage(out, { sync: true }),
    ...options,
    onRelease: (data) => unview(data.buffer),
  });
  const writer = packager.getWriter();
  const progress = new Progress(showProgress ?? Deno.stderr.isTerminal());
  let read = 0;
  const writeFrames = async () => {
    for (const frame of frames) {
      progress.frame(frame.dts, read);
      await writer.write(frame);
    }
    frames.length = 0;
  };
  try {
    while (length > 0) {
      read += length;
      viewers.set(chunk.buffer, { chunk, count: 1 });
      demuxer.decode(chunk.subarray(0, length));
      unview(chunk.buffer); // decoded: only its frames view it now
      await writeFrames();
      chunk = spare.pop() ?? new Uint8Array(READ_CHUNK_SIZE);
      length = await fill(chunk, 0);
    }
    demuxer.end();
    await writeFrames();
    await writer.close();
  } catch (error) {
    await writer.abort(error).catch(() => {}); // finishes the output with the segments written
    progress.stop();
    const endedEarly = error instanceof Error ? error.message : String(error);
    return { ...packager.stats, endedEarly };
  }
  progress.stop();
  return { ...packager.stats };
}
