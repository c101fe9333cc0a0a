/**
 * The in-memory files of one live HLS output, each stamped when written with what HTTP
 * validates a cached copy by: a strong entity tag and its modification time.
 *
 * @module
 */

import { type HlsFileData, MemoryStorage } from "../../media/hls/mod.ts";

/** When a file was written and the entity tag of that version. */
export interface FileStamp {
  /** A strong entity tag, quoted: `"<output id>.<write number>"`. */
  readonly etag: string;
  /** The write time in milliseconds since the epoch. */
  readonly modifiedMs: number;
  /** The write time as an HTTP date (`Last-Modified`). */
  readonly lastModified: string;
}

/**
 * A name no other output has used: the time in base 36 and random letters, so that an
 * output of the same key after a restart, or on another node, names its files apart.
 */
function outputId(): string {
  const random = crypto.getRandomValues(new Uint8Array(2));
  return Date.now().toString(36) +
    ((random[0] << 8 | random[1]) % 1296).toString(36).padStart(2, "0");
}

/**
 * A {@linkcode MemoryStorage} whose every write gets a new {@linkcode FileStamp}. Its
 * {@linkcode StampedFiles.id} is unique per output, so file names made with it
 * ({@linkcode StampedFiles.segmentPrefix}, {@linkcode StampedFiles.initPrefix}) are never
 * reused for other bytes, and an entity tag is never reused for another version.
 */
export class StampedFiles extends MemoryStorage {
  /** This output's id. */
  readonly id: string = outputId();
  /** The segment (and part) name prefix of this output. */
  readonly segmentPrefix: string = `seg-${this.id}-`;
  /** The init segment name prefix of this output. */
  readonly initPrefix: string = `init-${this.id}-`;
  #stamps = new Map<string, FileStamp>();
  #writes = 0;

  /** Stores a copy of `data` as `name` and stamps it. */
  override write(name: string, data: HlsFileData): Promise<void> {
    const done = super.write(name, data);
    const modifiedMs = Date.now();
    this.#stamps.set(name, {
      etag: `"${this.id}.${++this.#writes}"`,
      modifiedMs,
      lastModified: new Date(modifiedMs).toUTCString(),
    });
    return done;
  }

  /** Removes `name` and its stamp. */
  override delete(name: string): Promise<void> {
    this.#stamps.delete(name);
    return super.delete(name);
  }

  /** The stamp of the stored version of `name`, or `undefined`. */
  stamp(name: string): FileStamp | undefined {
    return this.#stamps.get(name);
  }
}
