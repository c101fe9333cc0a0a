/**
 * The transcoding worker: ffmpeg's own AAC and Opus codecs, built to WebAssembly
 * (`@ffmpeg/core`), run as one ffmpeg process per stream. It reads MPEG-TS from a shared
 * pipe (blocking in ffmpeg's read loop, so the server's event loop never waits on a codec)
 * and posts the MPEG-TS it writes back, one write at a time.
 *
 * Messages in: one {@linkcode StartMessage}. Messages out: {@linkcode WorkerMessage}s.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import createCore from "@ffmpeg/core";
import { PipeReader } from "./_pipe.ts";
import type { StartMessage, WorkerMessage } from "./_messages.ts";

/** Device numbers of the input and output files (any major not used by Emscripten). */
const INPUT_DEVICE = 70;
const OUTPUT_DEVICE = 71;

interface DeviceStream {
  seekable?: boolean;
}

interface EmscriptenFs {
  makedev(major: number, minor: number): number;
  registerDevice(dev: number, ops: {
    open(stream: DeviceStream): void;
    close(stream: DeviceStream): void;
    read(stream: DeviceStream, buffer: Int8Array, offset: number, length: number): number;
    write(stream: DeviceStream, buffer: Int8Array, offset: number, length: number): number;
  }): void;
  mkdev(path: string, mode: number, dev: number): void;
}

interface FfmpegCore {
  FS: EmscriptenFs;
  setLogger(logger: (line: { type: string; message: string }) => void): void;
  exec(...args: string[]): number;
}

function post(message: WorkerMessage, transfer: Transferable[] = []): void {
  self.postMessage(message, transfer);
}

self.onmessage = async (event: MessageEvent<StartMessage>) => {
  const { pipe, args } = event.data;
  try {
    const wasmBinary = await Deno.readFile(new URL(import.meta.resolve("@ffmpeg/core/wasm")));
    const core: FfmpegCore = await createCore({ wasmBinary });
    core.setLogger(({ message }) => post({ type: "log", line: message }));
    const input = new PipeReader(pipe);
    const fs = core.FS;
    const unseekable = (stream: DeviceStream) => void (stream.seekable = false);
    fs.registerDevice(fs.makedev(INPUT_DEVICE, 0), {
      open: unseekable,
      close() {},
      read: (_stream, buffer, offset, length) =>
        input.read(buffer.subarray(offset, offset + length)),
      write: () => 0,
    });
    fs.registerDevice(fs.makedev(OUTPUT_DEVICE, 0), {
      open: unseekable,
      close() {},
      read: () => 0,
      write(_stream, buffer, offset, length) {
        const bytes = new Uint8Array(buffer.buffer, buffer.byteOffset + offset, length).slice();
        post({ type: "data", bytes }, [bytes.buffer]);
        return length;
      },
    });
    fs.mkdev("/in.ts", 0o444, fs.makedev(INPUT_DEVICE, 0));
    fs.mkdev("/out.ts", 0o222, fs.makedev(OUTPUT_DEVICE, 0));
    post({ type: "ready" });
    const code = core.exec(...args, "/out.ts");
    post({ type: "done", code });
  } catch (error) {
    post({
      type: "failed",
      reason: error instanceof Error ? `${error.message} ${error.stack}` : String(error),
    });
  }
};
