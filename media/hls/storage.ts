/**
 * Where the HLS packager puts playlists and segments: a small interface with a
 * directory implementation and an in-memory one (for a live HTTP server).
 *
 * @module
 */

import { chunksOf, copyBytes } from "./_bytes.ts";

/**
 * The contents of a file: one buffer, or a list of chunks stored back to back
 * (a segment comes as the muxer's output views, so nothing is copied to join
 * them before it is written).
 *
 * @example
 * ```ts
 * import type { HlsFileData } from "@arcly/stream/hls";
 *
 * const whole: HlsFileData = new Uint8Array([1, 2, 3]);
 * const chunked: HlsFileData = [new Uint8Array([1]), new Uint8Array([2, 3])];
 * ```
 */
export type HlsFileData = Uint8Array | readonly Uint8Array[];

/**
 * The output of an HLS packager: named files, written whole and deleted by
 * name. Names are flat (`index.m3u8`, `seg12.ts`, `init0.mp4`).
 *
 * @example A storage that only counts bytes
 * ```ts
 * import type { HlsStorage } from "@arcly/stream/hls";
 *
 * let bytes = 0;
 * const counting: HlsStorage = {
 *   write(_name, data) {
 *     for (const chunk of data instanceof Uint8Array ? [data] : data) bytes += chunk.byteLength;
 *     return Promise.resolve();
 *   },
 *   delete(_name) {
 *     return Promise.resolve();
 *   },
 * };
 * ```
 */
export interface HlsStorage {
  /**
   * Stores `data` (one buffer, or chunks back to back) as `name`, replacing any
   * previous file of that name. Readers must never see a partly written file.
   * `data` is lent for the call: once the returned promise settles, the
   * packager may write other bytes into its memory (a TS segment's encoder
   * reuses it for later segments), so a storage keeping the bytes must copy
   * them, as {@linkcode MemoryStorage} does.
   */
  write(name: string, data: HlsFileData): Promise<void>;
  /** Removes `name`; removing a name that does not exist is not an error. */
  delete(name: string): Promise<void>;
}

/**
 * Keeps the files in memory, for serving them over HTTP. Each file is copied
 * into one buffer of its own (chunks joined), as the packager may reuse the
 * memory it passes to {@linkcode MemoryStorage.write}.
 *
 * @example
 * ```ts
 * import { MemoryStorage } from "@arcly/stream/hls";
 *
 * const storage = new MemoryStorage();
 * await storage.write("index.m3u8", new TextEncoder().encode("#EXTM3U\n"));
 * storage.read("index.m3u8")?.byteLength; // 8
 * ```
 */
export class MemoryStorage implements HlsStorage {
  #files = new Map<string, Uint8Array>();
  #bytes = 0;

  /** Stores a copy of `data` as `name`. */
  write(name: string, chunks: HlsFileData): Promise<void> {
    const data = copyBytes(chunks);
    this.#bytes += data.byteLength - (this.#files.get(name)?.byteLength ?? 0);
    this.#files.set(name, data);
    return Promise.resolve();
  }

  /** Removes `name`. */
  delete(name: string): Promise<void> {
    this.#bytes -= this.#files.get(name)?.byteLength ?? 0;
    this.#files.delete(name);
    return Promise.resolve();
  }

  /** The file `name`, or `undefined`. */
  read(name: string): Uint8Array | undefined {
    return this.#files.get(name);
  }

  /** The names of the stored files. */
  names(): string[] {
    return [...this.#files.keys()];
  }

  /** The total size of the stored files in bytes. */
  get bytes(): number {
    return this.#bytes;
  }
}

/** {@linkcode DirectoryStorage} gathers smaller chunks before writing them... */
const DIRECT_WRITE_SIZE = 64 * 1024;
/** ... in buffers of this size. */
const GATHER_SIZE = 256 * 1024;

/** Options of {@linkcode DirectoryStorage}. */
export interface DirectoryStorageOptions {
  /**
   * Write files with synchronous calls (default `false`). That saves a thread
   * hop per call, which makes a batch job quicker (`cli.ts package` uses it),
   * but every write blocks the event loop for as long as the disk takes: keep
   * it off in a server.
   */
  sync?: boolean;
}

/**
 * Writes the files into a directory (created when missing). Each file is
 * written through one open file to a temporary name and renamed into place,
 * so a web server reading the directory never serves half a playlist or
 * segment. Large chunks are written as they are; runs of small ones (an fMP4
 * segment's samples) are gathered in a reused buffer first, so a segment
 * takes a few writes rather than one per sample.
 *
 * @example
 * ```ts ignore
 * import { DirectoryStorage, HlsPackager } from "@arcly/stream/hls";
 *
 * const packager = new HlsPackager({ storage: new DirectoryStorage("out/hls") });
 * // A command packaging a file, with nothing else to serve meanwhile:
 * const batch = new HlsPackager({ storage: new DirectoryStorage("out/vod", { sync: true }) });
 * ```
 */
export class DirectoryStorage implements HlsStorage {
  /** The directory path. */
  readonly dir: string;
  #ready?: Promise<void>;
  readonly #sync: boolean;
  /** Gathering buffers not in use (one per write in progress). */
  readonly #spareBuffers: Uint8Array[] = [];

  /** Makes a storage writing into `dir`; see {@linkcode DirectoryStorageOptions}. */
  constructor(dir: string, options: DirectoryStorageOptions = {}) {
    this.dir = dir;
    this.#sync = options.sync ?? false;
  }

  /** Writes `data` to `dir/name` atomically (temporary file, then rename). */
  async write(name: string, data: HlsFileData): Promise<void> {
    const path = this.#path(name);
    await (this.#ready ??= Deno.mkdir(this.dir, { recursive: true }));
    const temp = `${this.dir}/.${name}.tmp`;
    const sync = this.#sync;
    const open = { write: true, create: true, truncate: true };
    const file = sync ? Deno.openSync(temp, open) : await Deno.open(temp, open);
    const gather = this.#spareBuffers.pop() ?? new Uint8Array(GATHER_SIZE);
    try {
      const writeAll = async (bytes: Uint8Array) => {
        for (let pos = 0; pos < bytes.byteLength;) {
          const rest = bytes.subarray(pos);
          pos += sync ? file.writeSync(rest) : await file.write(rest);
        }
      };
      let gathered = 0;
      for (const chunk of chunksOf(data)) {
        const direct = chunk.byteLength >= DIRECT_WRITE_SIZE;
        if (gathered > 0 && (direct || gathered + chunk.byteLength > GATHER_SIZE)) {
          await writeAll(gather.subarray(0, gathered)); // in order: before what follows
          gathered = 0;
        }
        if (direct) {
          await writeAll(chunk);
        } else {
          gather.set(chunk, gathered);
          gathered += chunk.byteLength;
        }
      }
      if (gathered > 0) await writeAll(gather.subarray(0, gathered));
    } finally {
      this.#spareBuffers.push(gather);
      file.close();
    }
    if (sync) Deno.renameSync(temp, path);
    else await Deno.rename(temp, path);
  }

  /** The path of `name`, which must be a plain file name (no separators, not hidden). */
  #path(name: string): string {
    if (!/^[\w-][\w.-]*$/.test(name)) throw new TypeError(`not a plain file name: ${name}`);
    return `${this.dir}/${name}`;
  }

  /** Removes `dir/name` if it exists. */
  async delete(name: string): Promise<void> {
    try {
      await Deno.remove(this.#path(name));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
}
