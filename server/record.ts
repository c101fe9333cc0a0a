/**
 * Recording a live stream to disk as HLS: one directory per publish.
 *
 * @module
 */

import type { Logger, StreamHandle } from "../mod.ts";
import { DirectoryStorage, HlsPackager, type HlsSegmentType } from "../media/hls/mod.ts";
import { isSafeName } from "../ingest/http/paths.ts";

/**
 * Record a publish into a directory of its own, `ROOT/APP/NAME/<UTC start>/`, as HLS with an
 * EVENT playlist that gets `EXT-X-ENDLIST` when the publish ends. While it runs the stream's
 * `recording` is true. A name that cannot be a directory name is not recorded (a warning
 * says so). Resolves once the recording is finished; failures are logged, never thrown.
 *
 * @example Record every publish
 * ```ts
 * import { Registry, silentLogger } from "@arcly/stream";
 * import { record } from "@arcly/stream/server";
 *
 * const registry = new Registry();
 * registry.on("publish", (handle) => void record(handle, "recordings", "ts", silentLogger));
 * ```
 */
export async function record(
  handle: StreamHandle,
  root: string,
  segmentType: HlsSegmentType,
  logger: Logger,
): Promise<void> {
  if (!isSafeName(handle.app) || !isSafeName(handle.stream)) {
    logger.warn(`record ${handle.key}: not recorded, the name cannot be a directory name`);
    return;
  }
  try {
    const parent = `${root}/${handle.app}/${handle.stream}`;
    await Deno.mkdir(parent, { recursive: true });
    const stamp = new Date().toISOString().slice(0, 19).replaceAll(":", "-") + "Z";
    let dir = `${parent}/${stamp}`;
    // Claim a directory of our own: a publish within the same second gets a suffix.
    for (let n = 2;; n++) {
      try {
        await Deno.mkdir(dir);
        break;
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists) || n > 100) throw error;
        dir = `${parent}/${stamp}-${n}`;
      }
    }
    logger.info(`record ${handle.key} to ${dir}`);
    using _recording = handle.beginRecording();
    const packager = new HlsPackager({
      storage: new DirectoryStorage(dir),
      segmentType,
      playlistType: "event",
      onSkip: (what) => logger.warn(`record ${handle.key}: ${what}`),
    });
    await handle.packageTo(packager, { background: true });
    const { segments, duration } = packager.stats;
    logger.info(`record ${handle.key}: ${segments} segments, ${duration.toFixed(1)} s in ${dir}`);
  } catch (error) {
    logger.error(`record ${handle.key}: ${error instanceof Error ? error.message : error}`);
  }
}
