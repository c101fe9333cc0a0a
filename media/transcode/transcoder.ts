/**
 * Audio transcoding between AAC and Opus, once per stream: frames in, frames out, with
 * their timestamps kept, the codec work in a worker.
 *
 * @module
 */

import type { MediaFrame } from "../../bus/frame.ts";
import { type Logger, silentLogger } from "../../bus/observe.ts";
import { TsDecoder } from "../ts/decoder.ts";
import { TsEncoder } from "../ts/encoder.ts";
import { opusPacketSamples } from "../codec/opus.ts";
import { FrameFlags } from "../../bus/frame.ts";
import { pipeMemory, PipeWriter } from "./_pipe.ts";
import type { StartMessage, WorkerMessage } from "./_messages.ts";

/** The audio codecs a transcoder writes. */
export type TranscodeTarget = "opus" | "aac";

/** Options for {@linkcode AudioTranscoder}. */
export interface AudioTranscoderOptions {
  /** The codec to write: `"opus"` (48 kHz stereo, as WebRTC carries it) or `"aac"` (AAC LC). */
  to: TranscodeTarget;
  /** Bits per second (default 96,000 for Opus, 128,000 for AAC). */
  bitrate?: number;
  /** What the log lines name, e.g. the stream key. */
  name?: string;
  /** Where the codec's errors go. */
  logger?: Logger;
  /**
   * Input bytes buffered for the worker at most (default 1 MiB, several seconds of audio);
   * frames that find it full are dropped and counted.
   */
  bufferBytes?: number;
}

/** Counters of a {@linkcode AudioTranscoder}. */
export interface AudioTranscoderStats {
  /** Audio frames taken in (configs included). */
  framesIn: number;
  /** Frames written out (configs included). */
  framesOut: number;
  /** Frames dropped because the worker fell behind. */
  dropped: number;
}

/**
 * Input timestamps are moved this far ahead of zero before they go into MPEG-TS, so that
 * the codec's start-up delay never makes an output timestamp negative (10 s at 90 kHz).
 */
const TIMELINE_OFFSET = 900_000;

/**
 * Transcodes the audio frames of one stream between AAC and Opus. Write the source's
 * audio frames (its CONFIG frames included) to `writable`; `readable` gives frames of the
 * target codec, a CONFIG frame first, on the source's timeline and track number. Video
 * frames are ignored. The codec runs in a worker (ffmpeg's AAC and Opus built to
 * WebAssembly), so the event loop never waits on it; closing `writable` drains it.
 *
 * @example Opus for a WebRTC viewer of an AAC stream
 * ```ts ignore
 * import { AudioTranscoder } from "@arcly/stream/transcode";
 *
 * const opus = new AudioTranscoder({ to: "opus" });
 * aacFrames.pipeThrough(opus).pipeTo(opusSink);
 * ```
 */
export class AudioTranscoder {
  /** Where the source's audio frames go. */
  readonly writable: WritableStream<MediaFrame>;
  /** The transcoded frames. */
  readonly readable: ReadableStream<MediaFrame>;
  /** Counters so far. */
  readonly stats: AudioTranscoderStats = { framesIn: 0, framesOut: 0, dropped: 0 };

  /** Start a transcoder (its worker loads the codecs meanwhile). */
  constructor(options: AudioTranscoderOptions) {
    const { to, name = "audio", logger = silentLogger } = options;
    const bitrate = options.bitrate ?? (to === "opus" ? 96_000 : 128_000);
    const memory = pipeMemory(options.bufferBytes ?? 1 << 20);
    const pipe = new PipeWriter(memory);
    const worker = new Worker(new URL("./_worker.ts", import.meta.url), { type: "module" });
    const finished = Promise.withResolvers<void>();
    const encoder = new TsEncoder({ video: null, probeDuration: 0 });
    const decoder = new TsDecoder();
    const stats = this.stats;
    let track = 0;
    let base: number | undefined;
    let output: TransformStreamDefaultController<MediaFrame> | undefined;
    const clock = new SampleClock();
    const emit = (frame: MediaFrame) => {
      if (frame.kind !== "audio" || base === undefined) return;
      stats.framesOut++;
      const config = (frame.flags & FrameFlags.CONFIG) !== 0;
      const samples = config ? 0 : to === "opus" ? opusSamples(frame.data) : 1024;
      const pts = clock.stamp(frame.pts - TIMELINE_OFFSET + base, samples);
      output?.enqueue({ ...frame, track, pts, dts: pts });
    };
    const send = (bytes: Uint8Array | undefined) => {
      if (!bytes) return;
      if (!pipe.write(bytes)) stats.dropped++;
      encoder.release([bytes]);
    };
    worker.onmessage = (event: MessageEvent<WorkerMessage>) => {
      const message = event.data;
      switch (message.type) {
        case "data":
          decoder.decode(message.bytes, emit);
          break;
        case "log":
          // ffmpeg's exit() ends the WebAssembly program with an abort
          if (message.line !== "Aborted()") {
            logger.warn(`transcode ${name} to ${to}: ${message.line}`);
          }
          break;
        case "done":
          if (message.code !== 0) logger.warn(`transcode ${name}: ffmpeg exited ${message.code}`);
          finished.resolve();
          break;
        case "failed":
          logger.error(`transcode ${name}: ${message.reason}`);
          finished.resolve();
          break;
      }
    };
    worker.onerror = (event) => {
      event.preventDefault();
      logger.error(`transcode ${name}: ${event.message}`);
      finished.resolve();
    };
    // ffmpeg's own Opus codec: the libopus encoder of this WebAssembly build traps on stereo
    // input (its stack is too small), and the source's Opus is decoded the same way.
    const [decode, encode] = to === "opus"
      ? [[], ["-c:a", "opus", "-strict", "-2", "-opus_delay", "20"]]
      : [["-c:a", "opus"], ["-c:a", "aac"]];
    const start: StartMessage = {
      pipe: memory,
      args: [
        ..."-hide_banner -nostdin -loglevel error -probesize 32 -fpsprobesize 0".split(" "),
        ..."-analyzeduration 0 -f mpegts".split(" "),
        ...decode,
        ..."-i /in.ts -map 0:a:0 -ar 48000 -ac 2".split(" "),
        ...encode,
        "-b:a",
        String(bitrate),
        ..."-copyts -muxdelay 0 -muxpreload 0 -flush_packets 1 -pes_payload_size 0".split(" "),
        ..."-f mpegts".split(" "),
      ],
    };
    worker.postMessage(start);
    const stop = () => {
      pipe.close();
      worker.terminate();
      finished.resolve();
    };
    const transform = new TransformStream<MediaFrame, MediaFrame>({
      start: (controller) => void (output = controller),
      transform: (frame) => {
        if (frame.kind !== "audio") return;
        stats.framesIn++;
        track = frame.track;
        base ??= frame.dts;
        const shift = TIMELINE_OFFSET - base;
        send(encoder.encode({ ...frame, pts: frame.pts + shift, dts: frame.dts + shift }));
      },
      flush: async () => {
        send(encoder.flush());
        pipe.close();
        await finished.promise;
        decoder.flush(emit);
        worker.terminate();
      },
      cancel: stop,
    });
    this.writable = transform.writable;
    this.readable = transform.readable;
  }
}

/**
 * Output timestamps from sample counts (48 kHz): ffmpeg stamps each encoded frame from the
 * input's timestamps, a few ticks off either way; a frame more than one frame duration away
 * from the count (a gap in the source) starts the count again there.
 */
class SampleClock {
  #anchor: number | undefined;
  #samples = 0;

  /** The timestamp of a frame ffmpeg stamped `pts` that holds `samples` samples. */
  stamp(pts: number, samples: number): number {
    const due = this.#anchor === undefined
      ? pts
      : this.#anchor + Math.round(this.#samples * 90_000 / 48_000);
    const frameTicks = Math.max(samples, 960) * 90_000 / 48_000;
    if (this.#anchor === undefined || Math.abs(pts - due) > frameTicks) {
      this.#anchor = pts;
      this.#samples = samples;
      return pts;
    }
    this.#samples += samples;
    return due;
  }
}

/** Samples in an Opus packet ffmpeg wrote; a packet too short to say counts as 20 ms. */
function opusSamples(packet: Uint8Array): number {
  try {
    return opusPacketSamples(packet);
  } catch {
    return 960;
  }
}
